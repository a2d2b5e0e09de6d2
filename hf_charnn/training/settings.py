"""
What a training run needs: the settings every task shares, in small groups, and the base of each task's own settings.

A task's settings (`training/tasks/*/__init__.py`) are a dataclass that extends `TrainingConfig` with the task's own
fields; the task registry (`TASKS`, below) finds them by name. Every field carries its command-line help
in its metadata (`setting`), and `add_setting_flags` builds a command's flags from the fields, as transformers'
`HfArgumentParser` does: a flag is declared once, where its field is.

    config = TrainingConfig.from_preset("lm", "default", output_dir="runs/lm", epochs=3)   # LanguageModelingSettings
"""

import argparse
import dataclasses
import types
import typing
from pathlib import Path

from ..errors import UserError

OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("constant", "linear", "cosine")
MIXED_PRECISION_CHOICES = ("auto", "no", "bf16")
REPORT_TO_CHOICES = ("tensorboard", "wandb", "all")
VOCABS = ("auto", "text8", "chars", "bytes")  # see data/vocabulary.py
# The preset that sizes the recipe to the data (training/recipes.py); what a run that names its data and no preset
# gets from the command line.
AUTO_PRESET = "auto"
# The settings that name a run's data; a run that sets none of them trains the exercise (hf_charnn.exercise).
DATA_SOURCES = ("train_file", "dataset_name", "corpus")

# Flag groups of a training command, in the order `--help` shows them.
HYPERPARAMETERS, DATA, RUN = "hyperparameters (each overrides the preset)", "data", "run"


def setting(default, help: str = "", **flag):
    """
    A settings field with its command-line flag. `flag` may hold: `choices`, `group` (HYPERPARAMETERS, DATA or RUN),
    `flags` (its option strings; False: no flag), `nargs`/`metavar`, `extra` (more flags writing the same field,
    as {option: argparse keywords}), `at_least` (the smallest value it takes, checked by `TrainingConfig.check`, and
    `why`);
    hf_charnn.exercise adds `exercise_only` (refused with data of one's own).
    """
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(**factory, metadata={"help": help, **flag})


def names_data(settings) -> bool:
    """Whether settings (a config, or a dict of them) name their data; else the run is the exercise's."""
    get = settings.get if isinstance(settings, dict) else (lambda name: getattr(settings, name, None))
    return any(get(name) for name in DATA_SOURCES)


@dataclasses.dataclass
class RunSettings:
    """Where a run writes, how long it trains, how it validates, saves, resumes and logs: every task's."""

    preset: str = setting("default", flags=False)
    output_dir: str = setting("runs/lm", "where checkpoints, metrics and the model go (default: runs/TASK)", group=RUN)
    seed: int = setting(42, group=HYPERPARAMETERS)
    batch_size: int = setting(32, group=HYPERPARAMETERS, at_least=1)
    epochs: int = setting(10, group=HYPERPARAMETERS, at_least=1)
    max_steps: int | None = setting(
        None, "stop after this many optimizer steps (overrides --epochs)", group=HYPERPARAMETERS, at_least=1
    )
    max_train_rows: int | None = setting(
        None, "train on the first N rows only (to time a slow preset's epoch)", group=RUN, at_least=1
    )
    mixed_precision: str = setting(
        "auto",
        "auto: bf16 on CUDA GPUs that support it, and on a CPU only where a bf16 step of this run's shape measures "
        "faster (the verdict is cached); loss stays fp32",
        group=RUN,
        choices=MIXED_PRECISION_CHOICES,
    )
    max_train_time: str | None = setting(
        None, "a training-time budget (90s, 5m, 2h): the schedule is fitted to it, then it stops", group=RUN
    )
    # False: the budget only stops the run (the schedule stays the data's, so that the same command trains the same
    # model); a recipe's cap is such a stop. True (a --max-train-time of one's own): the schedule is fitted to it.
    fit_schedule_to_budget: bool = setting(True, "fit the schedule to --max-train-time (else it only stops)", group=RUN)
    eval_steps: int | None = setting(None, "validate every N steps (default: after each epoch)", group=RUN, at_least=1)
    logging_steps: int | None = setting(None, "also log the training loss every N steps", group=RUN, at_least=1)
    save_steps: int | None = setting(
        None, "checkpoint every N steps (default: after each epoch)", group=RUN, at_least=1
    )
    save_total_limit: int = setting(
        2,
        "checkpoints of this run kept besides the best one",
        group=RUN,
        at_least=1,
        why="the checkpoint a resume starts from",
    )
    metric_for_best_model: str | None = setting(
        None,
        "{best_model_metrics}: keep the best validation step's model (its checkpoint is never pruned) and save it at "
        "the end",
        group=RUN,
    )
    early_stopping_patience: int | None = setting(
        None,
        "stop after N validations without a better --metric-for-best-model (default metric: {default_best_metric})",
        group=RUN,
        at_least=1,
    )
    resume_from: str | None = setting(
        None,
        "latest, or a checkpoints/step-N folder: continue that run (its model and data settings must not change)",
        group=RUN,
    )
    overwrite_output_dir: bool = setting(
        False,
        "start a new run in an output dir that holds another run's checkpoints or model (removes them first)",
        group=RUN,
    )
    stop_after_epoch: int | None = setting(
        None, "stop after this epoch (the checkpoint stays resumable)", group=RUN, at_least=1
    )
    report_to: str | None = setting(None, "an experiment tracker", group=RUN, choices=REPORT_TO_CHOICES)
    progress_bar: bool = setting(True, "a progress bar on a terminal (a log gets one line per evaluation)", group=RUN)
    cpu: bool = setting(False, "train on the CPU even if a GPU is present", group=RUN)
    # The settings the user gave (flags, a --config file): an `auto` recipe leaves them as they are.
    explicit_settings: tuple = setting(tuple, flags=False)


@dataclasses.dataclass
class OptimizerSettings:
    """The optimizer and its learning-rate schedule."""

    optimizer: str = setting("adamw", "sgd (as in the exercise) or adamw", group=HYPERPARAMETERS, choices=OPTIMIZERS)
    learning_rate: float = setting(4e-3, group=HYPERPARAMETERS, flags=("--learning-rate", "--lr"))
    weight_decay: float = setting(0.0, group=HYPERPARAMETERS)
    momentum: float = setting(0.0, "SGD momentum", group=HYPERPARAMETERS)
    lr_schedule: str = setting(
        "constant", "after --warmup-ratio of linear warm-up", group=HYPERPARAMETERS, choices=LR_SCHEDULES
    )
    warmup_ratio: float = setting(0.0, group=HYPERPARAMETERS)
    max_grad_norm: float | None = setting(None, "gradient clipping (0 turns it off)", group=HYPERPARAMETERS)
    lr_plateau_patience: int | None = setting(
        None,
        "cut the learning rate after every N validations without a better --metric-for-best-model",
        group=RUN,
        at_least=1,
    )
    lr_plateau_factor: float = setting(0.3, "what each such cut multiplies the rate by", group=RUN)


@dataclasses.dataclass
class ModelSettings:
    """The GRU's sizes (a task adds what its head reads)."""

    embedding_size: int = setting(64, group=HYPERPARAMETERS, at_least=1)
    hidden_size: int = setting(384, group=HYPERPARAMETERS, at_least=1)
    num_hidden_layers: int = setting(1, group=HYPERPARAMETERS, at_least=1)
    dropout: float = setting(0.0, group=HYPERPARAMETERS)
    # Start from a saved model (training/starting_model.py): its sizes and vocabulary, and the weights that fit.
    model_name_or_path: str | None = setting(
        None,
        "start from this model, a folder or a Hub id: an LM continues on new text, an LM's backbone starts a "
        "classifier or tagger, a classifier or tagger continues (a new head for other labels); sizes come from it",
        group=HYPERPARAMETERS,
    )
    revision: str | None = setting(
        None, "the Hub revision of --model-name-or-path: a branch, tag or commit", group=HYPERPARAMETERS
    )
    extend_vocab: bool = setting(
        False,
        "with --model-name-or-path: add a row to the embedding (and LM head) for each character of the data the model "
        "lacks",
        group=HYPERPARAMETERS,
    )


@dataclasses.dataclass
class DataSettings:
    """
    Where the texts come from: files or a `datasets` dataset (a task may add its own sources); none of them means the
    exercise's data (hf_charnn.exercise).
    """

    data_dir: str | None = setting(
        None,
        "folder of the exercise files (default: $HF_CHARNN_DATA, else the files packaged with hf_charnn)",
        group=RUN,
    )
    train_file: str | None = setting(None, "texts to train on", group=DATA)
    validation_file: str | None = setting(None, "texts to validate on", group=DATA)
    test_file: str | None = setting(None, "texts scored once at the end", group=DATA)
    dataset_name: str | None = setting(
        None, "datasets.load_dataset name: a Hub id or a local folder / builder", group=DATA
    )
    dataset_config: str | None = setting(None, "the dataset's configuration name", group=DATA)
    text_column: str = setting("text", "the text column of the files or dataset", group=DATA)
    validation_split_percentage: float = setting(
        5.0, "held out of the training data when no validation data is given", group=DATA
    )
    vocab: str = setting(
        "auto",
        "auto: text8 when every character is a text8 symbol, else the data's own characters when there are at most "
        "255, else bytes; chars; bytes (any text); text8",
        group=DATA,
        choices=VOCABS,
    )
    unk: bool = setting(False, "a chars vocabulary gets <unk>, where unseen characters go at inference", group=DATA)
    normalize: bool = setting(False, "map input text into text8 form", group=DATA)


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
# Run settings a model card lists beside the hyperparameters: how the saved step was chosen and the run stopped.
CARD_RUN_SETTINGS = (
    "metric_for_best_model",
    "early_stopping_patience",
    "lr_plateau_patience",
    "max_train_time",
    "fit_schedule_to_budget",
)
# Settings saved under an earlier name (training_config.json files of earlier releases): {old: new}.
RENAMED_SETTINGS = {"init_from": "model_name_or_path"}  # (the exercise's LM transfer, now any run's start)


def renamed_settings(settings: dict) -> dict:
    """Saved settings with earlier names under today's (one left unset, None, is dropped)."""
    renamed = {key: value for key, value in settings.items() if key not in RENAMED_SETTINGS}
    for old, new in RENAMED_SETTINGS.items():
        if settings.get(old) is not None and renamed.get(new) is None:
            renamed[new] = settings[old]
    return renamed


# Paths are not compared (a corpus may move); what they hold is, through the corpus fingerprint.
PATH_SETTINGS = ("data_dir", "train_file", "validation_file", "test_file", "text8_source", "model_name_or_path")


@dataclasses.dataclass
class TrainingConfig(ModelSettings, DataSettings, OptimizerSettings, RunSettings):
    """
    The base of every task's settings (see the module docstring). A task's subclass declares, as class attributes,
    what the registry and the command line read: its name, command, presets, best-model metrics, task and model
    classes, card template.
    """

    task: typing.ClassVar[str] = ""
    command: typing.ClassVar[str] = ""
    command_help: typing.ClassVar[str] = ""
    data_title: typing.ClassVar[str] = DATA  # the title of the command's data flags
    flag_help: typing.ClassVar[dict] = {}  # help of shared fields, in this task's words
    presets: typing.ClassVar[dict] = {}
    # --metric-for-best-model: what the task computes at validation, and whether larger is better.
    best_model_metrics: typing.ClassVar[dict] = {}
    default_best_metric: typing.ClassVar[str] = "loss"
    headline_metric: typing.ClassVar[str] = "loss"  # what a sweep's table shows of the final evaluation
    task_class: typing.ClassVar[str] = ""  # "module:Class" of the task (training/tasks/base.py), imported when used
    auto_class: typing.ClassVar[str] = ""  # the transformers Auto class its models load with
    architecture: typing.ClassVar[str] = ""  # the model class name a saved folder's config.json names
    card_template: typing.ClassVar[str] = ""  # model_cards/<this>
    model_noun: typing.ClassVar[str] = ""  # what its model is, in words ("language model": the export --web page)
    onnx_graph: typing.ClassVar[str] = ""  # "module:Class" of its ONNX graph (hf_charnn.export), in its own task.py

    @classmethod
    def from_preset(cls, task: str | None = None, preset: str = "default", **overrides) -> "TrainingConfig":
        """The settings of `task` (a registered task's name) from a named preset; keyword arguments override."""
        settings_class = cls if cls.task else task_settings(task)
        if task is not None and task != settings_class.task:
            raise UserError(
                f"{settings_class.__name__}.from_preset: {task!r} is not its task ({settings_class.task}); name the "
                "preset as preset=..."
            )
        if preset != AUTO_PRESET and preset not in settings_class.presets:
            choices = ", ".join([*settings_class.presets, AUTO_PRESET])
            raise UserError(f"unknown {settings_class.task} preset {preset!r}: choose one of {choices}")
        given = {key: value for key, value in overrides.items() if value is not None}
        settings_class.check_setting_names(given, "settings")
        values = {**settings_class.presets.get(preset, {}), **given}
        values["explicit_settings"] = tuple(sorted(set(given) - {"output_dir", "explicit_settings"}))
        values.setdefault("output_dir", f"runs/{settings_class.task}")
        return settings_class(preset=preset, **values)

    def stage_settings(self) -> dict:
        """
        What a first stage of this run (an LM another model starts from: the exercise's LM transfer, unlabeled
        texts) shares with it: the seed, the device and precision, the progress bar, and how it overwrites or resumes.
        """
        names = ("seed", "cpu", "mixed_precision", "progress_bar", "overwrite_output_dir", "resume_from")
        return {name: getattr(self, name) for name in names}

    def budget_seconds(self) -> float | None:
        """`max_train_time` in seconds (None: no budget)."""
        return parse_duration(self.max_train_time) if self.max_train_time else None

    @classmethod
    def field_names(cls) -> set[str]:
        return {field.name for field in dataclasses.fields(cls)}

    @classmethod
    def check_setting_names(cls, names, source: str):
        """A clear error for setting names that are not this task's fields (a typo, or another task's setting)."""
        unknown = sorted(set(names) - cls.field_names() - {"task"})
        if not unknown:
            return
        others = {name: other.task for other in registered_tasks() if other is not cls for name in other.field_names()}
        elsewhere = [f"{name} (a {others[name]} setting)" for name in unknown if name in others]
        named = ", ".join(elsewhere + [name for name in unknown if name not in others])
        raise UserError(
            f"{source}: unknown setting(s) {named} for a {cls.task} run; see `hf-charnn {cls.command} --help`"
        )

    @classmethod
    def own_settings(cls, settings: dict, source: str) -> dict:
        """
        This task's settings of a set read from a file. Another task's setting at its default value is dropped:
        training_config.json files saved before each task had settings of its own held every task's. Any other name
        this task does not know is an error naming the file.
        """
        defaults: dict[str, list] = {}  # a name's defaults in every task that has it (they may differ)
        for other in registered_tasks():
            for field in dataclasses.fields(other):
                if field.default is not dataclasses.MISSING:
                    defaults.setdefault(field.name, []).append(field.default)
        own = cls.field_names() | {"task"}
        settings = renamed_settings(settings)
        kept = {
            name: value
            for name, value in settings.items()
            if name in own or value not in defaults.get(name, [object()])
        }
        cls.check_setting_names(kept, source)
        return kept

    def names_data(self) -> bool:
        """Whether the run names its data (files, a `datasets` dataset, text8); else it is the exercise's."""
        return names_data(self)

    def check(self):
        """Settings that cannot work together, named before any data is read: the shared rules, then the task's."""
        for field in dataclasses.fields(self):
            value, meta = getattr(self, field.name), field.metadata
            if meta.get("choices") and value is not None and value not in meta["choices"]:
                raise UserError(
                    f"unknown {field.name.replace('_', ' ')} {value!r}: choose {', '.join(meta['choices'])}"
                )
            if meta.get("at_least") is not None and value is not None and value < meta["at_least"]:
                why = f" ({meta['why']})" if meta.get("why") else ""
                raise UserError(f"--{flag_name(field.name)} must be at least {meta['at_least']}{why}, not {value}")
        sources = [name for name in DATA_SOURCES if getattr(self, name, None)]
        if len(sources) > 1:
            raise UserError(f"give one corpus, not {' and '.join('--' + flag_name(name) for name in sources)}")
        if (self.validation_file or self.test_file) and not self.train_file:
            raise UserError("--validation-file / --test-file need --train-file")
        self.budget_seconds()  # a malformed --max-train-time, named
        metrics = self.best_model_metrics
        if self.metric_for_best_model is not None and self.metric_for_best_model not in metrics:
            raise UserError(
                f"--metric-for-best-model {self.metric_for_best_model!r}: a {self.task} run computes "
                f"{', '.join(metrics)}"
            )
        own_validation = self.validation_file or self.dataset_name or self.validation_split_percentage > 0
        watching = [name for name in ("early_stopping_patience", "metric_for_best_model") if getattr(self, name)]
        if watching and self.names_data() and not own_validation:
            raise UserError(
                f"--{flag_name(watching[0])} needs validation data: give --validation-file or a "
                "--validation-split-percentage above 0"
            )
        self.check_task()
        try:  # what the model needs is the model config's to check (models/configuration_char_gru.py)
            self.model_config()
        except ValueError as error:
            raise UserError(f"--{flag_name(str(error))}") from None

    def check_task(self):
        """The task's own rules (a subclass's)."""

    def model_config_kwargs(self) -> dict:
        """The task's own model settings (its head's), beside the GRU's sizes."""
        return {}

    def model_config(self, vocabulary=None, label_names: list[str] | None = None):
        """
        The model's config: these sizes, over `vocabulary` (a `Vocabulary`; text8 when not given), and with labels,
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
            **self.model_config_kwargs(),
        )

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

    def card_hyperparameters(self) -> dict:
        """What a model card lists: the hyperparameters set (not None, False or zero), and how the run chose its step
        and stopped."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if (field.metadata.get("group") == HYPERPARAMETERS or field.name in CARD_RUN_SETTINGS)
            and getattr(self, field.name) not in (None, False)
        }

    def as_dict(self) -> dict:
        """Every setting, with the task's name (what checkpoints record and a resume compares)."""
        return {"task": self.task, **dataclasses.asdict(self)}

    def portable(self) -> dict:
        """
        The settings with no local paths (for `training_config.json`, which a push uploads): a file is named by its
        file name alone, the output and resume folders are left out. `--config` reads it back.
        """
        settings = self.as_dict()
        for name in ("output_dir", "resume_from", "overwrite_output_dir", "explicit_settings"):
            settings.pop(name)
        for name in PATH_SETTINGS:
            value = settings.get(name)
            if value is not None and "://" not in str(value) and (name != "model_name_or_path" or Path(value).exists()):
                settings[name] = Path(value).name  # (a Hub id stays whole)
        return settings

    @classmethod
    def from_saved(cls, settings: dict) -> "TrainingConfig":
        """A run's saved settings (its training_config.json) as its task's settings; names it does not know dropped
        (folders saved before each task had settings of its own held every task's)."""
        settings_class = task_settings(settings.get("task", "lm"))
        known = settings_class.field_names()
        return settings_class(**{key: value for key, value in renamed_settings(settings).items() if key in known})


def flag_name(name: str) -> str:
    return name.replace("_", "-")


def _flag_type(field: dataclasses.Field):
    """The type a flag parses its value as, from the field's annotation (`int | None` -> int)."""
    kind = field.type
    if isinstance(kind, types.UnionType):
        kind = next(arm for arm in typing.get_args(kind) if arm is not type(None))
    return typing.get_origin(kind) or kind


def add_setting_flags(parser: argparse.ArgumentParser, settings_class: type) -> None:
    """
    A training command's flags, one per field of `settings_class` (its `setting` metadata: help, choices, group);
    every flag defaults to None, so that only what is given overrides the preset (and lands in `explicit_settings`).
    A field no preset of the task sets shows its default in the help.
    """
    groups = {
        HYPERPARAMETERS: parser.add_argument_group(HYPERPARAMETERS),
        DATA: parser.add_argument_group(settings_class.data_title),
        RUN: parser.add_argument_group(RUN),
    }
    preset_set = {name for preset in settings_class.presets.values() for name in preset}
    for field in dataclasses.fields(settings_class):
        meta = field.metadata
        if meta.get("flags") is False:
            continue
        help_text = settings_class.flag_help.get(field.name, meta.get("help", "")).format(
            best_model_metrics=", ".join(settings_class.best_model_metrics),
            default_best_metric=settings_class.default_best_metric,
        )
        if field.name not in preset_set and field.default not in (None, dataclasses.MISSING, False, ""):
            help_text = f"{help_text} (default: {field.default})".lstrip()
        options = meta.get("flags") or (f"--{flag_name(field.name)}",)
        kind = _flag_type(field)
        keywords = dict(dest=field.name, default=None, help=(help_text or None) and help_text.replace("%", "%%"))
        if kind is bool:
            keywords["action"] = argparse.BooleanOptionalAction
        else:
            keywords.update(type=kind if kind in (int, float) else str)
            if kind is list:
                keywords.update(type=int, nargs=meta.get("nargs"), metavar=meta.get("metavar"))
            if meta.get("choices"):
                keywords["choices"] = meta["choices"]
        group = groups[meta.get("group", RUN)]
        group.add_argument(*options, **keywords)
        for option, extra in meta.get("extra", {}).items():
            group.add_argument(option, dest=field.name, default=None, **extra)


def settings_from_flags(args: argparse.Namespace, settings_class: type) -> dict:
    """The settings a command's flags gave (those left out are None and not returned)."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(settings_class)
        if field.metadata.get("flags") is not False and getattr(args, field.name, None) is not None
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


# The task registry: each task's settings class by name, filled as the tasks are declared (`register_task`); importing
# `hf_charnn.training.tasks` (or `hf_charnn.training`, `hf_charnn`) declares the built-in ones.
TASKS: dict = {}


def register_task(settings_class: type) -> type:
    """Add a task (its settings class, which names it); a class decorator."""
    TASKS[settings_class.task] = settings_class
    return settings_class


def registered_tasks() -> list[type[TrainingConfig]]:
    """Every task's settings class, in registration order."""
    return list(TASKS.values())


def task_settings(name: str) -> type[TrainingConfig]:
    """The settings class of the task named `name`; one line naming the choices for any other."""
    if not TASKS:
        raise RuntimeError("no task is declared yet: import hf_charnn.training.tasks (hf_charnn.training does)")
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def register_preset(task: str, name: str, settings: dict):
    """Add a named preset to a task (a recipe of another package: the exercise's `lm-transfer`)."""
    task_settings(task).presets[name] = dict(settings)
