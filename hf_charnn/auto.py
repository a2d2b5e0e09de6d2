"""
Registering the classes with transformers' Auto classes, without making `import hf_charnn` load torch.

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
import sys

CLASS_MODULES = ("hf_charnn.configuration_char_gru", "hf_charnn.tokenization_char_gru", "hf_charnn.modeling_char_gru")
_WATCHED = ("transformers", *CLASS_MODULES)
_registered = False


def register_auto_classes():
    """Register the config, models and tokenizer with the Auto classes and for remote code (once per process)."""
    global _registered
    if _registered:
        return
    _registered = True
    _remove_finder()
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from .configuration_char_gru import CharGRUConfig
    from .modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification, CharGRUModel
    from .tokenization_char_gru import CharTokenizer

    AutoConfig.register(CharGRUConfig.model_type, CharGRUConfig, exist_ok=True)
    AutoModel.register(CharGRUConfig, CharGRUModel, exist_ok=True)
    AutoModelForCausalLM.register(CharGRUConfig, CharGRUForCausalLM, exist_ok=True)
    AutoModelForSequenceClassification.register(CharGRUConfig, CharGRUForSequenceClassification, exist_ok=True)
    AutoTokenizer.register(CharGRUConfig, slow_tokenizer_class=CharTokenizer, exist_ok=True)
    CharGRUConfig.register_for_auto_class()
    CharGRUModel.register_for_auto_class("AutoModel")
    CharGRUForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    CharGRUForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
    CharTokenizer.register_for_auto_class()


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
