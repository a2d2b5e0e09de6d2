"""
What a training run needs (`TrainingConfig`) and the named presets it starts from.

    config = TrainingConfig.from_preset("lm", "default", output_dir="runs/lm", epochs=3)
"""

import dataclasses
from pathlib import Path

from ..errors import UserError

# Every choice list lives here; the command line offers exactly these, and `TrainingConfig.check` enforces them.
TASKS = ("lm", "classifier")
OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("constant", "linear", "cosine")
MIXED_PRECISION_CHOICES = ("auto", "no", "bf16")
REPORT_TO_CHOICES = ("tensorboard", "wandb", "all")
CORPORA = ("text8",)
VOCABS = ("auto", "text8", "chars", "bytes")  # see data/vocabulary.py
CLASSIFIER_READOUTS = ("last", "pooled")  # see models/configuration_char_gru.py
CLASS_WEIGHTS = ("balanced",)
# --metric-for-best-model: what each task computes at validation, and whether larger is better.
BEST_MODEL_METRICS = {
    "lm": {"loss": False, "bpc": False, "perplexity": False},
    "classifier": {"accuracy": True, "macro_f1": True, "loss": False},
}
# The preset that sizes the recipe to the data (training/recipes.py); what a run that names its data and no preset
# gets from the command line.
AUTO_PRESET = "auto"

# What a resume may change. Schedule settings may differ from the checkpoint's (the difference is reported);
# settings about where and how a run is shown or saved are not compared; every other setting shapes the model or
# the stream of training data, and a resume that changes one is refused (see checkpoints.compare_settings).
SCHEDULE_SETTINGS = (
    "epochs",
    "max_steps",
    "eval_steps",
    "eval_chars",
    "eval_streams",
    "eval_warmup",
    "logging_steps",
    "save_steps",
    "save_total_limit",
    "stop_after_epoch",
    "early_stopping_patience",
    "lr_plateau_patience",
    "lr_plateau_factor",
    "max_train_time",
    "fit_schedule_to_budget",
)
RUN_SETTINGS = (
    "output_dir",
    "resume_from",
    "overwrite_output_dir",
    "progress_bar",
    "report_to",
    "cpu",
    "preset",
    "explicit_settings",
)
# Paths are not compared (a corpus may move); what they hold is, through the corpus fingerprint.
PATH_SETTINGS = ("data_dir", "train_file", "validation_file", "test_file", "text8_source", "init_from")


@dataclasses.dataclass
class TrainingConfig:
    """Everything a run needs; `from_preset` fills it from a named preset, keyword arguments override."""

    task: str = "lm"
    preset: str = "default"
    data_dir: str | None = None  # the exercise's files (default: $HF_CHARNN_DATA, else the packaged ones)
    output_dir: str = "runs/lm"
    # The data: an LM corpus (data/corpus.py) or labeled texts (data/labeled.py). None of train_file, dataset_name and
    # corpus set means the exercise's data (hf_charnn.exercise), which the command line then trains.
    train_file: str | None = None  # plain text: .txt, .gz or .zip
    validation_file: str | None = None
    test_file: str | None = None
    dataset_name: str | None = None  # datasets.load_dataset: a Hub id or a local folder / builder
    dataset_config: str | None = None
    text_column: str = "text"
    label_column: str = "label"  # classifier files / datasets: the column of labels
    corpus: str | None = None  # "text8": the whole text8, 90M / 5M / 5M characters
    text8_source: str | None = None  # where --corpus text8 comes from (default: its URL); a URL, a zip or the file
    validation_split_percentage: float = 5.0  # held out of the training corpus when no validation text is given
    vocab: str = "auto"  # "auto", "text8", "chars" (the corpus's own characters) or "bytes" (see corpus.load_corpus)
    unk: bool = False  # a chars vocabulary gets <unk>, where characters outside it go at inference
    # model
    embedding_size: int = 64
    hidden_size: int = 384
    num_hidden_layers: int = 1
    dropout: float = 0.0
    # optimisation
    optimizer: str = "adamw"  # "sgd" (as in the exercise) or "adamw"
    learning_rate: float = 4e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # SGD only
    lr_schedule: str = "constant"  # "constant", "linear" or "cosine", after `warmup_ratio` of linear warm-up
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = None
    batch_size: int = 32
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    mixed_precision: str = "auto"  # "auto": bf16 on CUDA, and on a CPU only where a bf16 step measures faster
    # classifier reading (see models/configuration_char_gru.py)
    bidirectional: bool = False
    classifier_readout: str = "last"  # "last" state, or "pooled": mean + max over the real characters
    # classifier: a bag of hashed character n-grams of these lengths beside the GRU (None or []: none); see
    # models/configuration_char_gru.py
    ngram_range: list | None = None
    ngram_buckets: int = 65536
    ngram_embedding_size: int = 64
    ngram_learning_rate_scale: float = 1.0  # the bag's learning rate, as a multiple of learning_rate
    # classifier: a linear n-gram classifier (an SVM's) fitted first, its scores added to the GRU's (training/linear.py)
    ngram_linear: bool = False
    max_length: int | None = None  # classifier: texts are cut to their first N characters (training and scoring)
    group_by_length: bool = False  # classifier: batches of texts of similar lengths (less padding), per seed
    class_weight: str | None = None  # classifier: "balanced" weighs each label's loss by 1 / its share
    # LM data
    chunk_size: int = 64
    carry_state: bool = True
    init_from: str | None = None  # classifier: a saved LM whose embedding and GRU start it (its sizes win)
    # The exercise's settings (read by hf_charnn.exercise only; refused with data of one's own):
    exclude_dev_examples: bool = False  # LM: mask every dev classification window out of the targets
    # classifier: also train on every prefix of each example (its label: is the next letter a vowel?); does nothing
    # for one's own labels
    prefix_labels: bool = False
    transfer_from_lm: bool = False  # classifier: first train a leak-free LM (dev windows excluded), then start from it
    # Keep the last N training examples of each class out of training (a classifier never sees them; an LM never
    # has their windows as targets), to compare models on examples none of them was trained on.
    holdout_examples: int = 0
    # evaluation and checkpoints
    eval_steps: int | None = None  # validate every N steps (default: at the end of each epoch)
    eval_chars: int | None = None  # mid-run validation reads only the first N characters; the end scores all
    eval_streams: int | None = None  # long-text scoring streams (default: 1, exact, up to 20k chars; more above)
    eval_warmup: int = 256  # characters that warm each scoring stream's state up (not scored)
    logging_steps: int | None = None  # also log the training loss every N steps (metrics rows without dev metrics)
    save_steps: int | None = None  # checkpoint every N steps (default: at the end of each epoch)
    save_total_limit: int = 2  # checkpoints of this run kept (at least 1), besides the best one
    metric_for_best_model: str | None = None  # keep the best validation step's model (see BEST_MODEL_METRICS)
    early_stopping_patience: int | None = None  # stop after N validations without a better metric
    # Cut the learning rate by lr_plateau_factor after every N validations without a better metric (None: never).
    lr_plateau_patience: int | None = None
    lr_plateau_factor: float = 0.3
    max_train_time: str | None = None  # "90s", "5m", "2h": stop when spent, the schedule fitted to it
    # False: the budget only stops the run (the schedule stays the data's, so that the same command trains the same
    # model); a recipe's cap is such a stop. True (a --max-train-time of one's own): the schedule is fitted to it.
    fit_schedule_to_budget: bool = True
    overwrite_output_dir: bool = False  # a fresh run into a folder holding another run: remove that run first
    # run
    max_train_rows: int | None = None  # train on the first N rows only (for timing a slow preset's epoch)
    seed: int = 42
    normalize: bool = False
    resume_from: str | None = None  # a checkpoints/step-N folder, or "latest"
    stop_after_epoch: int | None = None  # end the run early (an "interruption"), checkpoint kept
    report_to: str | None = None
    progress_bar: bool = True
    cpu: bool = False
    # The settings the user gave (flags, a --config file): an `auto` recipe leaves them as they are.
    explicit_settings: tuple = ()

    @classmethod
    def from_preset(cls, task: str, preset: str = "default", **overrides) -> "TrainingConfig":
        if task not in TASKS:
            raise UserError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
        if preset != AUTO_PRESET and preset not in PRESETS[task]:
            choices = ", ".join([*PRESETS[task], AUTO_PRESET])
            raise UserError(f"unknown {task} preset {preset!r}: choose one of {choices}")
        given = {key: value for key, value in overrides.items() if value is not None}
        values = {**PRESETS[task].get(preset, {}), **given}
        values["explicit_settings"] = tuple(sorted(set(given) - {"output_dir", "explicit_settings"}))
        return cls(task=task, preset=preset, **values)

    def budget_seconds(self) -> float | None:
        """`max_train_time` in seconds (None: no budget)."""
        return parse_duration(self.max_train_time) if self.max_train_time else None

    @classmethod
    def check_setting_names(cls, names, source: str):
        """A clear error for setting names that are not fields (a typo in a sweep or --config file)."""
        unknown = sorted(set(names) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; use TrainingConfig field names")

    def names_data(self) -> bool:
        """Whether the run names its data (files, a `datasets` dataset, text8); else it is the exercise's."""
        return bool(self.train_file or self.dataset_name or self.corpus)

    def check(self):
        """Settings that cannot work together, named before any data is read."""
        for name, choices in (
            ("task", TASKS),
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", LR_SCHEDULES),
            ("mixed_precision", MIXED_PRECISION_CHOICES),
            ("report_to", (None, *REPORT_TO_CHOICES)),
            ("corpus", (None, *CORPORA)),
            ("vocab", VOCABS),
            ("classifier_readout", CLASSIFIER_READOUTS),
            ("class_weight", (None, *CLASS_WEIGHTS)),
        ):
            if getattr(self, name) not in choices:
                named = ", ".join(str(choice) for choice in choices if choice is not None)
                raise UserError(f"unknown {name.replace('_', ' ')} {getattr(self, name)!r}: choose {named}")
        if self.save_total_limit < 1:
            raise UserError(
                "--save-total-limit must be at least 1 (the checkpoint a resume starts from), not "
                f"{self.save_total_limit}"
            )
        sources = [name for name in ("train_file", "dataset_name", "corpus") if getattr(self, name)]
        if len(sources) > 1:
            raise UserError(f"give one corpus, not {' and '.join('--' + name.replace('_', '-') for name in sources)}")
        if (self.validation_file or self.test_file) and not self.train_file:
            raise UserError("--validation-file / --test-file need --train-file")
        if self.task == "classifier" and self.corpus:
            raise UserError(
                "--corpus text8 is an LM corpus; a classifier reads labeled texts (--train-file or --dataset-name)"
            )
        if self.names_data():
            # The exercise's recipes read its example files. (--prefix-labels does nothing for other labels.)
            exercise_only = ["transfer_from_lm", "holdout_examples", "exclude_dev_examples"]
            if self.task == "classifier":
                exercise_only.append("init_from")
            exercise_only = [name for name in exercise_only if getattr(self, name)]
            if exercise_only:
                raise UserError(
                    f"{', '.join('--' + name.replace('_', '-') for name in exercise_only)}: only for the "
                    "vowel/consonant "
                    "exercise data, not with --train-file / --dataset-name / --corpus"
                )
        for name in (
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "batch_size",
            "chunk_size",
            "epochs",
            "max_steps",
            "eval_steps",
            "save_steps",
            "logging_steps",
            "eval_chars",
            "eval_streams",
            "max_length",
            "early_stopping_patience",
            "lr_plateau_patience",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        self.budget_seconds()  # a malformed --max-train-time, named
        metrics = BEST_MODEL_METRICS[self.task]
        if self.metric_for_best_model is not None and self.metric_for_best_model not in metrics:
            raise UserError(
                f"--metric-for-best-model {self.metric_for_best_model!r}: a {self.task} run computes "
                f"{', '.join(metrics)}"
            )
        own_validation = self.validation_file or self.dataset_name or self.validation_split_percentage > 0
        watching = [name for name in ("early_stopping_patience", "metric_for_best_model") if getattr(self, name)]
        if watching and self.names_data() and not own_validation:
            raise UserError(
                f"--{watching[0].replace('_', '-')} needs validation data: give --validation-file or a "
                "--validation-split-percentage above 0"
            )
        if self.task == "lm" and (self.bidirectional or self.classifier_readout != "last" or self.class_weight):
            raise UserError("--bidirectional, --classifier-readout and --class-weight are for classifiers")
        from ..models.configuration_char_gru import check_ngram_settings

        if self.ngram_linear and not self.ngram_range:
            if "ngram_linear" in self.explicit_settings:
                raise UserError("--ngram-linear reads the text's n-grams: give --ngram-range too (say 1 4)")
            self.ngram_linear = False  # --no-ngrams: neither the bag nor the linear part
        try:
            check_ngram_settings(
                self.ngram_range or None, self.ngram_buckets, self.ngram_embedding_size, self.ngram_linear
            )
        except ValueError as error:
            raise UserError(f"--{str(error).replace('_', '-')}") from None
        if self.task == "lm" and self.ngram_range:
            raise UserError("--ngram-range is for classifiers (an LM predicts from its GRU state alone)")
        if self.ngram_range and self.prefix_labels and not self.names_data():
            raise UserError("--prefix-labels trains the state after every prefix: it cannot read an n-gram bag")
        if self.task == "lm" and (self.max_length or self.group_by_length):
            raise UserError("--max-length and --group-by-length are for classifiers (an LM reads --chunk-size)")
        if self.prefix_labels and not self.names_data() and (self.bidirectional or self.classifier_readout != "last"):
            raise UserError("--prefix-labels trains the state after every prefix: it needs a one-way GRU read last")

    def training_flops_per_char(self, output_size: int) -> float:
        """
        Forward + backward (3x forward) matmul FLOPs per training character: GRU gates and the output head of
        `output_size` outputs (an LM's vocabulary size, a classifier's labels).
        """
        forward = 0
        for layer in range(self.num_hidden_layers):
            inputs = self.embedding_size if layer == 0 else self.hidden_size
            forward += 2 * 3 * self.hidden_size * (inputs + self.hidden_size)
        forward += 2 * self.hidden_size * output_size
        return 3 * forward

    def portable(self) -> dict:
        """
        The settings with no local paths (for `training_config.json`, which a push uploads): a file is named by its
        file name alone, the output and resume folders are left out. `--config` reads it back.
        """
        settings = dataclasses.asdict(self)
        for name in ("output_dir", "resume_from", "overwrite_output_dir", "explicit_settings"):
            settings.pop(name)
        for name in PATH_SETTINGS:
            if settings[name] is not None and "://" not in str(settings[name]):
                settings[name] = Path(settings[name]).name
        return settings

    def model_config(self, vocabulary=None, label_names: list[str] | None = None):
        """
        The model's config: these sizes, over `vocabulary` (a `Vocabulary`; text8 when not given), and for a classifier,
        `id2label` / `label2id` from `label_names`.
        """
        from ..models.configuration_char_gru import CharGRUConfig

        labels = {}
        if label_names:
            labels = {
                "id2label": dict(enumerate(label_names)),
                "label2id": {name: index for index, name in enumerate(label_names)},
            }
        return CharGRUConfig(
            **(vocabulary.config_kwargs() if vocabulary is not None else {}),
            **labels,
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            classifier_readout=self.classifier_readout,
            ngram_range=list(self.ngram_range) if self.ngram_range else None,
            ngram_buckets=self.ngram_buckets,
            ngram_embedding_size=self.ngram_embedding_size,
            ngram_linear=self.ngram_linear,
        )


# `seed` is the classic hand-rolled run (one example a step, plain SGD); `default` is tuned for this 2-core CPU;
# `text8` is sized for the full text8 on one modern GPU (see docs/training.md). The exercise registers its own recipe
# (`lm-transfer`) with `register_preset`.
PRESETS = {
    "lm": {
        "seed": dict(
            embedding_size=200,
            hidden_size=300,
            optimizer="sgd",
            learning_rate=5e-3,
            epochs=10,
            batch_size=1,
            chunk_size=20,
            carry_state=False,
        ),
        "default": dict(
            embedding_size=64,
            hidden_size=384,
            dropout=0.25,
            optimizer="adamw",
            learning_rate=4e-3,
            weight_decay=0.1,
            lr_schedule="cosine",
            warmup_ratio=0.1,
            max_grad_norm=1.0,
            epochs=14,
            batch_size=32,
            chunk_size=64,
            carry_state=True,
        ),
        # Your own text of about a megabyte (tinyshakespeare: see README, "Your own text"): the default LM with less
        # dropout (measured on tinyshakespeare: 0.1 reached 1.53 nats/char in 1,300 steps), over the corpus's own
        # characters by default (--vocab auto).
        "small-corpus": dict(
            embedding_size=64,
            hidden_size=384,
            dropout=0.1,
            optimizer="adamw",
            learning_rate=4e-3,
            weight_decay=0.1,
            lr_schedule="cosine",
            warmup_ratio=0.1,
            max_grad_norm=1.0,
            epochs=10,
            batch_size=32,
            chunk_size=64,
            carry_state=True,
            eval_chars=20_000,
        ),
        "text8": dict(
            embedding_size=256,
            hidden_size=1536,
            num_hidden_layers=2,
            dropout=0.1,
            optimizer="adamw",
            learning_rate=2e-3,
            weight_decay=0.01,
            lr_schedule="cosine",
            warmup_ratio=0.02,
            max_grad_norm=1.0,
            epochs=1,
            batch_size=256,
            chunk_size=256,
            carry_state=True,
            eval_steps=500,
            eval_chars=500_000,
            save_steps=500,
        ),
    },
    "classifier": {
        "seed": dict(
            embedding_size=200,
            hidden_size=300,
            optimizer="sgd",
            learning_rate=5e-3,
            epochs=10,
            batch_size=1,
        ),
        "default": dict(
            embedding_size=32,
            hidden_size=128,
            dropout=0.2,
            optimizer="adamw",
            learning_rate=1e-2,
            weight_decay=0.05,
            lr_schedule="cosine",
            warmup_ratio=0.05,
            max_grad_norm=1.0,
            epochs=4,
            batch_size=128,
            prefix_labels=True,
        ),
    },
}


def parse_duration(text: str) -> float:
    """Seconds of a duration: `90s`, `5m`, `2h`, `1.5h` (a bare number is seconds); else one line naming the form."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = str(text).strip().lower()
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise UserError(f"--max-train-time {text!r}: give a positive duration such as 90s, 5m or 2h")
    return seconds


def register_preset(task: str, name: str, settings: dict):
    """Add a named preset (a recipe of another package: the exercise's `lm-transfer`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    PRESETS[task][name] = dict(settings)
