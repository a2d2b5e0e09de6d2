"""
The tasks: every kind of model hf_charnn trains is a task, and each task is one package here, registered in
`settings.TASKS` when declared.

- `<task>/__init__.py` declares it, cheaply (no torch): its settings dataclass (`TrainingConfig` + its own fields,
  whose metadata make its command's flags), its presets, its best-model metrics, its command, its model's Auto class
  and architecture, its card template; and registers it with `register_task`.
- `<task>/task.py` is its `Task` (`base.py`): how it reads its data, builds and trains its model, validates, evaluates
  and describes the result; imported only when a run needs it.

The command line, the card, the Auto loading, the export and the sweeps look a task up here by name (or by a saved
model's architecture) instead of comparing names:

    settings_class = task_settings("classifier")         # SequenceClassificationSettings
    config = settings_class.from_preset(preset="auto", train_file="labels.csv")
    task = task_for(config)                              # a SequenceClassificationTask, its data not read yet
"""

import importlib

from ..settings import TASKS, TrainingConfig, register_preset, register_task, registered_tasks, task_settings

__all__ = [
    "TrainingConfig",
    "load_class",
    "register_preset",
    "register_task",
    "registered_tasks",
    "task_for",
    "task_for_architectures",
    "task_settings",
]


def task_for_architectures(architectures) -> type | None:
    """The settings class of the task whose models a saved config's `architectures` name (None: no such task)."""
    for settings_class in TASKS.values():
        if settings_class.architecture in (architectures or []):
            return settings_class
    return None


def load_class(path: str):
    """A "module:Name" path's object (task and model classes are named so, to be imported only when used)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def task_for(config):
    """The task a config's settings belong to, on the data it names (read by `Task.load`)."""
    return load_class(type(config).task_class)(config)


# The built-in tasks declare themselves (each declaration is cheap to import), in the order `--help` lists them.
# isort: off
from . import language_modeling  # noqa: E402, F401
from . import classification  # noqa: E402, F401
from . import tagging  # noqa: E402, F401

# isort: on
