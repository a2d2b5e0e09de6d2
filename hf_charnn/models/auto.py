"""
The models and transformers' Auto classes: registering them (without making `import hf_charnn` load torch), and
loading saved folders with errors that say which file is wrong and what to do (`load_model`).

Two registrations, done together and once:
- locally (`AutoConfig.register`, ...): `AutoModelForCausalLM.from_pretrained(folder)` works once hf_charnn is
  imported, without remote code;
- for remote code (`register_for_auto_class`, at class level): every `save_pretrained` / `push_to_hub` of these
  classes, from our training or a user's own script, writes `auto_map` and copies the modeling code, so the folder
  also loads with `trust_remote_code=True` where hf_charnn is not installed.

Both need transformers, whose import costs seconds (it loads torch), so they happen as soon as transformers and
our three class modules can all be imported: at once if transformers already is, else right after the import that
completes the set (a meta-path finder that wraps the loaders of those modules; a module still being imported, e.g.
`modeling_char_gru` while it imports transformers, is waited for). The command line's `--version` and `--help`
import none of them.
"""

import importlib.abc
import importlib.machinery
import json
import re
import sys
from pathlib import Path

from ..errors import UserError

CLASS_MODULES = (
    "hf_charnn.models.configuration_char_gru",
    "hf_charnn.models.tokenization_char_gru",
    "hf_charnn.models.modeling_char_gru",
)
_WATCHED = ("transformers", *CLASS_MODULES)
REQUIRED_FILES = ("config.json", "model.safetensors")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
_registered = False


def register_auto_classes():
    """Register the config, models and tokenizer with the Auto classes and for remote code (once per process)."""
    global _registered
    if _registered:
        return
    _registered = True
    _remove_finder()
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    from .configuration_char_gru import CharGRUConfig
    from .modeling_char_gru import (
        CharGRUForCausalLM,
        CharGRUForSequenceClassification,
        CharGRUForTokenClassification,
        CharGRUModel,
    )
    from .tokenization_char_gru import CharTokenizer, CharTokenizersBackend

    AutoConfig.register(CharGRUConfig.model_type, CharGRUConfig, exist_ok=True)
    AutoModel.register(CharGRUConfig, CharGRUModel, exist_ok=True)
    AutoModelForCausalLM.register(CharGRUConfig, CharGRUForCausalLM, exist_ok=True)
    AutoModelForSequenceClassification.register(CharGRUConfig, CharGRUForSequenceClassification, exist_ok=True)
    AutoModelForTokenClassification.register(CharGRUConfig, CharGRUForTokenClassification, exist_ok=True)
    # Both tokenizers by name (a folder's tokenizer_config.json names its class: taggers save the tokenizers-backed
    # one), the Python one last so that it stays the config's default (a bytes vocabulary needs it).
    AutoTokenizer.register(CharGRUConfig, tokenizer_class=CharTokenizersBackend, exist_ok=True)
    AutoTokenizer.register(CharGRUConfig, tokenizer_class=CharTokenizer, exist_ok=True)
    CharGRUConfig.register_for_auto_class()
    CharGRUModel.register_for_auto_class("AutoModel")
    CharGRUForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    CharGRUForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    CharGRUForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
    CharTokenizer.register_for_auto_class()
    CharTokenizersBackend.register_for_auto_class()


def _being_imported(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _register_if_ready(just_run: str):
    # `just_run` has run its code but still counts as being imported until its loader returns.
    if "transformers" in sys.modules and not any(_being_imported(name) for name in _WATCHED if name != just_run):
        register_auto_classes()


class _RegisterAfterImports(importlib.abc.MetaPathFinder):
    """Finds the watched modules as usual; after each one's code has run, registers if the set is complete."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        # A fresh loader per find_spec; availability checks (importlib.util.find_spec) never execute it.
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _register_if_ready(fullname)

        spec.loader.exec_module = exec_module
        return spec


def _remove_finder():
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterAfterImports)]


def register_when_transformers_is_imported():
    if "transformers" in sys.modules:
        register_auto_classes()
    elif not any(isinstance(finder, _RegisterAfterImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImports())


# -- loading saved folders ---------------------------------------------------------------------------------------
def check_model_folder(model_dir: str | Path) -> Path:
    """The folder, if it holds a config and readable safetensors weights; otherwise a `UserError`."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found; pass a folder written by `save_pretrained` or training")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder}: not a saved model, missing {', '.join(missing)}; re-save it with save_pretrained")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        load_file(folder / "model.safetensors")
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(
            f"{folder / 'model.safetensors'}: corrupted or truncated weights ({error}); "
            "copy the file again or re-save the model"
        ) from None
    return folder


def _architectures(source: str | Path) -> list[str]:
    try:
        return json.loads((Path(source) / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        return []


def is_classifier_folder(source: str | Path) -> bool:
    """Whether a local model folder holds a classifier (its config's `architectures` say so)."""
    return any("SequenceClassification" in name for name in _architectures(source))


def task_of_folder(source: str | Path):
    """The settings class of the task whose model a saved folder holds (training/tasks), from its `architectures`."""
    from ..training.tasks import registered_tasks, task_for_architectures

    settings_class = task_for_architectures(_architectures(check_model_folder(source)))
    if settings_class is None:
        models = ", ".join(task.architecture for task in registered_tasks())
        raise UserError(f"{source}: config.json names none of hf_charnn's models ({models}); re-save the model")
    return settings_class


def looks_like_repo_id(source: str) -> bool:
    """`user/name` that is not a local path: a Hub repository id."""
    return bool(REPO_ID.fullmatch(source)) and not Path(source).exists()


def load_model(model_dir: str | Path, task: str):
    """
    A saved model of a task (a registered task's name: "lm", "classifier"), in eval mode, through the task's Auto
    class: a folder or a Hub repo id.
    """
    import transformers

    from ..training.tasks import task_settings

    register_auto_classes()

    auto_class = getattr(transformers, task_settings(task).auto_class)
    if looks_like_repo_id(str(model_dir)):
        try:
            return auto_class.from_pretrained(str(model_dir)).eval()
        except (OSError, ValueError, KeyError) as error:  # not found, offline, unreachable (Hub errors are OSErrors),
            # not a char_gru model: one line
            raise UserError(
                f"{model_dir}: not a model folder here, and it could not be loaded from the Hub "
                f"({error.__class__.__name__}); check the path or the repo id (and the network, or HF_HUB_OFFLINE)"
            ) from None
    folder = check_model_folder(model_dir)
    try:
        model = auto_class.from_pretrained(folder)
        vocabulary = model.vocabulary  # the config's vocabulary must match its size
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"{folder}: cannot load the model ({error})") from None
    check_tokenizer(folder, vocabulary)
    return model.eval()


def check_tokenizer(folder: Path, vocabulary):
    """A saved tokenizer must speak the model's vocabulary (a text8 tokenizer beside a chars model would mis-encode)."""
    if not (folder / "tokenizer_config.json").is_file():
        return
    from .tokenization_char_gru import CharTokenizer

    try:
        tokenizer = CharTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: cannot load the tokenizer ({error}); re-save it with the model") from None
    if tokenizer.vocabulary.symbols != vocabulary.symbols:
        raise UserError(
            f"{folder}: the tokenizer's vocabulary ({tokenizer.vocabulary.kind}, {tokenizer.vocabulary.size} "
            "symbols) does not "
            f"match the model's ({vocabulary.kind}, {vocabulary.size}); save the tokenizer the model was trained with "
            "(CharTokenizer.for_model(model.config).save_pretrained(folder))"
        )


def read_vocabulary(model_dir: str | Path):
    """The `Vocabulary` of a saved model folder (checked first), from its config alone."""
    from .configuration_char_gru import CharGRUConfig
    from .tokenization_char_gru import Vocabulary

    return Vocabulary.from_config(CharGRUConfig.from_pretrained(check_model_folder(model_dir)))
