"""Loading saved models with errors that say which file is wrong and what to do."""

import re
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import UserError

REQUIRED_FILES = ("config.json", "model.safetensors")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


def check_model_folder(model_dir: str | Path) -> Path:
    """The folder, if it holds a config and readable safetensors weights; otherwise a `UserError`."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: model folder not found; pass a folder written by `save_pretrained` or training")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder}: not a saved model, missing {', '.join(missing)}; re-save it with save_pretrained")
    try:
        load_file(folder / "model.safetensors")
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(
            f"{folder / 'model.safetensors'}: corrupted or truncated weights ({error}); "
            "copy the file again or re-save the model"
        ) from None
    return folder


def is_classifier_folder(source: str | Path) -> bool:
    """Whether a local model folder holds a classifier (its config's `architectures` say so)."""
    import json

    try:
        architectures = json.loads((Path(source) / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any("SequenceClassification" in name for name in architectures)


def looks_like_repo_id(source: str) -> bool:
    """`user/name` that is not a local path: a Hub repository id."""
    return bool(REPO_ID.fullmatch(source)) and not Path(source).exists()


def load_model(model_dir: str | Path, task: str):
    """A saved LM (`task="lm"`) or classifier, in eval mode, through the Auto classes: a folder or a Hub repo id."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    import hf_charnn  # noqa: F401  (registers the Auto classes)

    auto_class = AutoModelForCausalLM if task == "lm" else AutoModelForSequenceClassification
    if looks_like_repo_id(str(model_dir)):
        try:
            return auto_class.from_pretrained(str(model_dir)).eval()
        except Exception as error:  # not found, offline, unreachable, not a char_gru model: one line
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
            f"{folder}: the tokenizer's vocabulary ({tokenizer.vocabulary.kind}, {tokenizer.vocabulary.size} symbols) does not "
            f"match the model's ({vocabulary.kind}, {vocabulary.size}); save the tokenizer the model was trained with "
            "(CharTokenizer.for_model(model.config).save_pretrained(folder))"
        )
