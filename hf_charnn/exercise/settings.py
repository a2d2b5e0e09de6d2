"""
The exercise's settings: the general LM's and classifier's (`training/tasks`), each with the fields only the exercise
reads, registered in their place when the exercise is imported (the command line does), so that `train-lm` and
`train-classifier` offer them. With data of one's own named, the exercise's recipes are refused; the prefix labels do
nothing there (the exercise's `default` preset, which sets them, serves one's own labels too).
"""

import dataclasses

from ..errors import UserError
from ..training.settings import HYPERPARAMETERS, register_task, setting, task_settings
from ..training.tasks.classification import PRESETS as CLASSIFIER_PRESETS
from ..training.tasks.classification import SequenceClassificationSettings
from ..training.tasks.language_modeling import LanguageModelingSettings


class ExerciseSettings:
    """What both of the exercise's settings share: the recipes that read its example files."""

    def check_task(self):
        super().check_task()
        if not self.names_data():
            return
        exercise_only = [
            field.name
            for field in dataclasses.fields(self)
            if field.metadata.get("exercise_only") and getattr(self, field.name)
        ]
        if exercise_only:
            raise UserError(
                f"{', '.join('--' + name.replace('_', '-') for name in exercise_only)}: only for the vowel/consonant "
                "exercise data, not with --train-file / --dataset-name / --corpus"
            )


@register_task
@dataclasses.dataclass
class ExerciseLanguageModelingSettings(ExerciseSettings, LanguageModelingSettings):
    """The LM's settings, and the exercise's: a leak-free LM for the LM-transfer recipe."""

    # Mask every dev classification window out of the targets; keep the last N training examples of each class out
    # of the targets too (to compare models on examples none of them was trained on).
    exclude_dev_examples: bool = setting(False, flags=False, exercise_only=True)
    holdout_examples: int = setting(0, flags=False, exercise_only=True)


# The LM-transfer recipe (transfer.py): train the `default` LM with every dev example's window masked out of its
# targets, score it zero-shot, then fine-tune a classifier that starts from its embedding and GRU (the LM's sizes).
LM_TRANSFER = dict(
    transfer_from_lm=True,
    holdout_examples=500,
    dropout=0.25,
    optimizer="adamw",
    learning_rate=3e-3,
    weight_decay=0.05,
    lr_schedule="cosine",
    warmup_ratio=0.05,
    max_grad_norm=1.0,
    epochs=3,
    batch_size=128,
    prefix_labels=True,
)


@register_task
@dataclasses.dataclass
class VowelConsonantSettings(ExerciseSettings, SequenceClassificationSettings):
    """The classifier's settings, and the exercise's: prefix labels, and the LM-transfer recipe."""

    command_help = "train a classifier: your labeled texts, or the vowel/consonant exercise"
    data_title = "labeled texts (default: the exercise's vowel/consonant example files)"
    presets = {
        **CLASSIFIER_PRESETS,
        # The exercise's classifier (83.4 % dev accuracy): the general default, also trained on every prefix.
        "default": {**CLASSIFIER_PRESETS["default"], "prefix_labels": True},
        "lm-transfer": LM_TRANSFER,
    }

    prefix_labels: bool = setting(
        False,
        "vowel/consonant task: also train on every prefix of each example (its next character's label)",
        group=HYPERPARAMETERS,
    )
    # First train a leak-free LM (dev windows excluded), then start from it (`model_name_or_path`, as any run starts
    # from a model: its embedding and GRU start the classifier, its sizes win); `holdout_examples`: as the LM's.
    transfer_from_lm: bool = setting(False, flags=False, exercise_only=True)
    holdout_examples: int = setting(0, flags=False, exercise_only=True)

    def check_task(self):
        super().check_task()
        if self.prefix_labels and not self.names_data():
            from ..models.configuration_char_gru import check_position_labels

            try:
                model_config = self.model_config()
            except ValueError:
                return  # settings the model refuses: `check` names them
            try:
                check_position_labels(model_config)
            except ValueError as error:
                raise UserError(f"--prefix-labels: {error}") from None


def exercise_settings(config):
    """
    A config as the exercise's settings: one made from the general task's settings (before the exercise was imported)
    becomes the exercise's subclass, every value kept, its own fields at their defaults.
    """
    exercise_class = task_settings(config.task)
    if type(config) is exercise_class or not issubclass(exercise_class, type(config)):
        return config
    return exercise_class(**dataclasses.asdict(config))
