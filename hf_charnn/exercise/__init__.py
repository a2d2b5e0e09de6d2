"""
The text8 exercise, as one task among others: its packaged files and their loaders (`files.py`), its two tasks
(`tasks.py`: the LM on text8-100k scored on the dev text, and the vowel/consonant classifier), its evaluation harness
with the *sane* / *normalizes* checks (`harness.py`), its baselines (`baselines.py`), the LM-transfer recipe
(`transfer.py`) and its settings (`settings.py`). Only the command line imports this package; the rest of hf_charnn
knows nothing of the exercise.

    from hf_charnn.exercise import train_exercise
    from hf_charnn.training import TrainingConfig
    train_exercise(TrainingConfig.from_preset("lm", "default", output_dir="runs/lm"))   # dev perplexity 3.979

Importing it is cheap (the command line reads its settings while building `--help`): the rest loads when used.
"""

from . import settings  # noqa: F401  (registers the exercise's settings in place of the general ones)


def train_exercise(config) -> dict:
    """
    Train the exercise: `config` names no data (the packaged files, or `data_dir`). The LM-transfer recipe
    (`transfer_from_lm`) trains its leak-free LM first; every other run is the one loop on the exercise's task.
    """
    from ..training.loop import train
    from .settings import exercise_settings
    from .tasks import exercise_task

    config = exercise_settings(config)
    config.check()  # before a recipe's LM trains for minutes
    if getattr(config, "transfer_from_lm", False) and not config.model_name_or_path:  # a classifier's recipe
        from .transfer import train_lm_transfer

        return train_lm_transfer(config)
    return train(config, exercise_task(config))
