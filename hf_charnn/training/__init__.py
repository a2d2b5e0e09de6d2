"""
Training: the shared settings (`settings.py`), the task registry and each task's settings, presets and `Task`
(`tasks/`), the one loop (`loop.py`), checkpoints, precision, the run folder's files, processes, and sweeps.

    from hf_charnn.training import TrainingConfig, train
    summary = train(TrainingConfig.from_preset("lm", "default", train_file="my.txt", output_dir="runs/mine"))

The names below load on first use: `hf_charnn.training.settings` and the task declarations (what `--help`
reads) need no torch.
"""

import importlib

_LAZY_ATTRIBUTES = {
    "TrainingConfig": "tasks",
    "register_preset": "tasks",
    "register_task": "tasks",
    "task_settings": "tasks",
    "Task": "tasks.base",
    "LanguageModelingSettings": "tasks.language_modeling",
    "SequenceClassificationSettings": "tasks.classification",
    "LanguageModelingTask": "tasks.language_modeling.task",
    "SequenceClassificationTask": "tasks.classification.task",
    "task_for": "tasks",
    "train": "loop",
    "save_trained_model": "loop",
    "TrainingDiverged": "loop",
    "close_distributed": "processes",
}


def __getattr__(name: str):
    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY_ATTRIBUTES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY_ATTRIBUTES])


__all__ = sorted(_LAZY_ATTRIBUTES)
