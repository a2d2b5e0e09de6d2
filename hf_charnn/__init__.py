"""
hf_charnn: character-level GRU language models, text classifiers and character taggers for the Hugging Face stack
(transformers, datasets, accelerate), on any text: the text8 exercise is one task among others (`hf_charnn.exercise`).

The layers (see docs/architecture.md): `models/` (the config, model and tokenizer that travel as remote code, and
their Auto-class registration), `data/`, `training/` (the shared settings, the task registry, one package a task),
`exercise/`, and `evaluation.py`, `card.py`, `export.py`, `hub.py`, `demo.py`, `cli.py`.

Importing the package is cheap (the command line answers `--version` and `--help` without loading torch): the
classes below load on first use. Importing hf_charnn is still enough for transformers' Auto classes to load a
saved folder without remote code: the classes are registered as soon as both hf_charnn and transformers are
imported, in whichever order (see `models/auto.py`).
"""

import importlib

from .errors import DataError, UserError

__version__ = "0.1.0"

# Public name -> the module that defines it (loaded when first asked for, as transformers' own _LazyModule does).
_LAZY_ATTRIBUTES = {
    "CharGRUConfig": "models.configuration_char_gru",
    "CharGRUCausalLMOutput": "models.modeling_char_gru",
    "CharGRUForCausalLM": "models.modeling_char_gru",
    "CharGRUForSequenceClassification": "models.modeling_char_gru",
    "CharGRUForTokenClassification": "models.modeling_char_gru",
    "CharGRUModel": "models.modeling_char_gru",
    "CharGRUOutput": "models.modeling_char_gru",
    "CharGRUPreTrainedModel": "models.modeling_char_gru",
    "CharTokenizer": "models.tokenization_char_gru",
    "CharTokenizersBackend": "models.tokenization_char_gru",
    "Vocabulary": "models.tokenization_char_gru",
    "CHARACTERS": "models.tokenization_char_gru",
    "normalize_text": "models.tokenization_char_gru",
    "encode_text": "data.sources",
    "load_model": "models.auto",
    "train": "training.loop",
    "TrainingConfig": "training.tasks",
}


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(f".{_LAZY_ATTRIBUTES[name]}", __name__), name)
    else:
        try:  # submodules: `hf_charnn.demo`, `hf_charnn.data`, ...
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY_ATTRIBUTES])


from .models.auto import register_when_transformers_is_imported  # noqa: E402  (needs nothing above but is part of the import)

register_when_transformers_is_imported()

__all__ = ["DataError", "UserError", "__version__", *sorted(_LAZY_ATTRIBUTES)]
