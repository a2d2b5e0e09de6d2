"""
The base of every task: what differs between training one kind of model and another, so that the loop (`loop.py`)
has no branch on the task. A task builds its data and its model, counts what a step's batch teaches, validates, runs
the final evaluation, and says what the card and `eval_results.json` report. Its settings, presets and metrics are
declared beside it (`<task>/__init__.py`); see `training/tasks/__init__.py`.
"""

from pathlib import Path

import torch
from accelerate import PartialState

from ...card import CardWords, ModelIndex
from .. import recipes, starting_model
from ..settings import AUTO_PRESET

VALIDATION_ROWS_PER_PROCESS = 64  # a padded validation batch: this many rows on each process


class Task:
    """The base: what every task provides (see the module docstring). `load` fills the data attributes."""

    model_class: type
    validation_name = "validation"  # metrics rows name validation figures `{validation_name}_{metric}`
    collate_fn = None  # None: a batch's rows are already of one length

    def __init__(self, config):
        self.config = config
        self.train_dataset = None
        self.validation = self.test = None
        self.vocabulary = None
        self.vocabulary_reason = ""
        self.description = ""
        self.fingerprint: dict = {}  # {split: "length:digest"}, compared on resume
        self.recipe: recipes.Recipe | None = None  # the settings sized to the data (preset "auto")
        self.validation_dataset = None  # rows of validation texts, when the task validates in padded batches
        self.validation_loader = None
        self.starting: starting_model.StartingModel | None = None  # --model-name-or-path
        self.starting_record: dict = {}  # what the run took from it (the summary's and the card's words)

    # -- data and model
    def before_load(self):
        """What a task does before its data is read (a classifier's LM on unlabeled texts); nothing by default."""

    def load(self):
        raise NotImplementedError

    def apply_recipe(self, recipe: "recipes.Recipe"):
        """An `auto` run: the recipe's settings go into the config (the user's own kept) and are checked."""
        self.adopt_starting_model()  # its sizes first: the recipe sizes what they leave
        if self.config.preset != AUTO_PRESET:
            return
        self.recipe = recipe
        recipe.apply(self.config, fixed=tuple(self.starting_record.get("sizes", {})))
        self.config.check()

    def adopt_starting_model(self):
        """
        The model the run starts from (`--model-name-or-path`), if any, gives its sizes (a contradicting flag is
        refused): in `apply_recipe`, before the recipe sizes the rest, or (a task without a recipe) after `load`. The
        data was read in its vocabulary (training/starting_model.py).
        """
        start = starting_model.starting_model(self.config)
        if start is None or self.starting is not None:
            return
        self.starting = start
        taken = starting_model.adopt_sizes(self.config, start)
        self.config.check()
        self.starting_record = {
            "model_name_or_path": start.source,
            "name": start.source if start.on_hub else Path(start.source).name,  # (the card's: no local path)
            "revision": start.revision,
            "commit": start.commit,
            "task": start.task,
            "kind": start.kind,
            "sizes": taken,
        }

    def build_model(self, model_config, label_names=None):
        """A fresh model of `model_config`, or the one the run starts from with the weights that fit it."""
        if self.starting is None:
            return self.model_class(model_config)
        model, record = starting_model.build_model(
            self.starting, self.config.task, self.model_class, model_config, self.vocabulary, label_names
        )
        self.starting_record.update(record)
        PartialState().print(
            f"started from {self.starting.describe()}: kept {', '.join(record['kept'])}"
            + (f"; new: {', '.join(record['new'])}" if record["new"] else "")
        )
        return model

    def start_lines(self) -> list[str]:
        """What the run prints once its data is read."""
        lines = [f"vocabulary: {self.vocabulary_reason}"]
        if self.recipe is not None:
            lines += [self.recipe.summary_line(), *(f"  because {reason}" for reason in self.recipe.reasons)]
        if self.starting is not None:
            sizes = ", ".join(f"{name} {value}" for name, value in self.starting_record["sizes"].items())
            lines.append(f"starting from {self.starting.describe()}: {sizes}")
        return lines

    def summary_extras(self) -> dict:
        """What the run summary (and `eval_results.json`) says of the task's own choices: its recipe, its start."""
        extras = {"recipe": self.recipe.as_dict()} if self.recipe is not None else {}
        if self.starting_record:
            extras["starting_model"] = self.starting_record
        return extras

    def batch_sampler(self, dataset):
        """A batch sampler for the training rows, or None: the loop's shuffled (or, carrying state, ordered) batches."""
        return None

    def loss(self, batch: dict, outputs) -> torch.Tensor:
        """The training loss of a batch (the model's own, unless the task weighs it)."""
        return outputs.loss

    def default_best_metric(self) -> str:
        """What picks the best model under early stopping when no `--metric-for-best-model` is given."""
        return type(self.config).default_best_metric

    def best_metric(self, name: str) -> tuple[str, bool]:
        """(the metrics row key of `--metric-for-best-model` NAME, whether larger is better)."""
        return f"{self.validation_name}_{name}", type(self.config).best_model_metrics[name]

    @property
    def carries_state(self) -> bool:
        """Whether the GRU state is carried from one batch to the next (batches then come in order, unshuffled)."""
        return False

    def sequence_length(self) -> int:
        """A typical training row's length (the precision probe times a step of this shape)."""
        raise NotImplementedError

    def new_model(self):
        return self.build_model(self.config.model_config(self.vocabulary))

    def tokenizer_max_length(self) -> int | None:
        """The longest text the saved tokenizer gives a pipeline (its `model_max_length`); None: any length."""
        return None

    def tokenizer(self, model_config):
        """The tokenizer saved with the model: the Python character tokenizer, whose ids the model reads."""
        from ...models.tokenization_char_gru import CharTokenizer

        return CharTokenizer.for_model(model_config)

    def finish_model(self, model) -> dict:
        """After training (the best step's weights loaded): the task's last choices; what the summary says of them."""
        return {}

    # -- steps, validation, evaluation
    def counts(self, batch: dict, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, correct predictions) of a training batch, on the device (no host sync)."""
        raise NotImplementedError

    def train_metrics(self, loss: float, correct: int, targets: int) -> dict:
        raise NotImplementedError

    def prepare_validation(self, accelerator):
        """
        Prepare what `validate` reads, once per run (under several processes too): a loader of `validation_dataset`,
        when the task has one. Any process count: each process takes VALIDATION_ROWS_PER_PROCESS rows of a batch; the
        uneven last batch is evened out by Accelerate and its repeats dropped again by `gather_for_metrics`.
        """
        if self.validation_dataset is None:
            return
        # Its own generator: each pass over a DataLoader draws a seed from a generator, and from the global one (the
        # dropout masks' source) without it, so how often a run validated would change what it trained.
        self.validation_loader = accelerator.prepare_data_loader(
            torch.utils.data.DataLoader(
                self.validation_dataset,
                batch_size=VALIDATION_ROWS_PER_PROCESS * accelerator.num_processes,
                collate_fn=self.collate_fn,
                generator=torch.Generator().manual_seed(0),
            )
        )

    def validate(self, model, accelerator) -> dict:
        raise NotImplementedError

    def final_evaluation(self, model) -> dict:
        """{"results": on all of the validation data, "test_results": on the test split, when there is one}."""
        raise NotImplementedError

    # -- what the run reports
    def curve(self) -> tuple[str, str]:
        """(the metrics row key of the learning curve's validation panel, its axis label)."""
        raise NotImplementedError

    def card_words(self, summary: dict) -> CardWords:
        raise NotImplementedError

    def model_index(self) -> ModelIndex:
        """What the card's `model-index` reports: the pipeline tag and the metrics."""
        raise NotImplementedError

    def save_extras(self, output_dir):
        """Files of the task's own beside the saved model (an LM: its dynamic-evaluation statistics)."""
