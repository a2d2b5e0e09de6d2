"""hf_charnn: character-level GRU models (text8 vowel/consonant classifier and character LM) for the HF stack."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from .configuration_char_gru import CharGRUConfig
from .errors import DataError, UserError
from .modeling_char_gru import (
    CharGRUCausalLMOutput,
    CharGRUForCausalLM,
    CharGRUForSequenceClassification,
    CharGRUModel,
    CharGRUOutput,
    CharGRUPreTrainedModel,
)
from .text import decode_ids, encode_text, normalize_text
from .tokenization_char_gru import CHARACTERS, VOWELS, CharTokenizer

__version__ = "0.1.0"

# Importing hf_charnn is enough for the Auto classes to load a saved folder without remote code.
AutoConfig.register(CharGRUConfig.model_type, CharGRUConfig, exist_ok=True)
AutoModel.register(CharGRUConfig, CharGRUModel, exist_ok=True)
AutoModelForCausalLM.register(CharGRUConfig, CharGRUForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(CharGRUConfig, CharGRUForSequenceClassification, exist_ok=True)
AutoTokenizer.register(CharGRUConfig, slow_tokenizer_class=CharTokenizer, exist_ok=True)

# ... and every `save_pretrained` / `push_to_hub` of these classes, from our training or from a user's own script,
# writes `auto_map` and copies the modeling code, so the folder also loads with `trust_remote_code=True` where
# hf_charnn is not installed (the Hub's "model type char_gru not recognized").
CharGRUConfig.register_for_auto_class()
CharGRUModel.register_for_auto_class("AutoModel")
CharGRUForCausalLM.register_for_auto_class("AutoModelForCausalLM")
CharGRUForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
CharTokenizer.register_for_auto_class()

__all__ = [
    "CHARACTERS",
    "VOWELS",
    "CharGRUCausalLMOutput",
    "CharGRUConfig",
    "CharGRUForCausalLM",
    "CharGRUForSequenceClassification",
    "CharGRUModel",
    "CharGRUOutput",
    "CharGRUPreTrainedModel",
    "CharTokenizer",
    "DataError",
    "UserError",
    "decode_ids",
    "encode_text",
    "normalize_text",
]
