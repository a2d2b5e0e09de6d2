"""
hf_charnn: character-level GRU models (text8 vowel/consonant classifier and character LM) for the HF stack.

Importing the package is cheap (the command line answers `--version` and `--help` without loading torch): the
classes below load on first use. Importing hf_charnn is still enough for transformers' Auto classes to load a
saved folder without remote code: the classes are registered as soon as both hf_charnn and transformers are
imported, in whichever order (see `auto.py`).
"""

import importlib

from .errors import DataError, UserError

__version__ = "0.1.0"

# Public name -> the module that defines it (loaded when first asked for, as transformers' own _LazyModule does).
_LAZY_ATTRIBUTES = {
    "CharGRUConfig": "configuration_char_gru",
    "CharGRUCausalLMOutput": "modeling_char_gru",
    "CharGRUForCausalLM": "modeling_char_gru",
    "CharGRUForSequenceClassification": "modeling_char_gru",
    "CharGRUModel": "modeling_char_gru",
    "CharGRUOutput": "modeling_char_gru",
    "CharGRUPreTrainedModel": "modeling_char_gru",
    "CharTokenizer": "tokenization_char_gru",
    "Vocabulary": "tokenization_char_gru",
    "CHARACTERS": "tokenization_char_gru",
    "VOWELS": "tokenization_char_gru",
    "decode_ids": "text",
    "encode_text": "text",
    "normalize_text": "text",
}


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(f".{_LAZY_ATTRIBUTES[name]}", __name__), name)
    else:
        try:  # submodules: `hf_charnn.demo`, `hf_charnn.corpus`, ...
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY_ATTRIBUTES])


from .auto import register_when_transformers_is_imported  # noqa: E402  (needs nothing above but is part of the import)

register_when_transformers_is_imported()

__all__ = ["DataError", "UserError", "__version__", *sorted(_LAZY_ATTRIBUTES)]
