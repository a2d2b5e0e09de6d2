"""
Starting from a saved model (`--model-name-or-path`, a folder or a Hub id at `--revision`), for every task, as
transformers' `run_clm.py` and `run_glue.py` do:

- **the same task** (an LM on new text, a classifier or tagger on new data): every weight continues. A classifier's
  or tagger's head continues when the labels are the same, in the same order; with other labels it starts fresh (the
  summary and the card say which);
- **an LM into a classifier or a tagger**: the backbone (embedding and GRU) is kept and the head is new (the exercise's
  LM-transfer recipe is this, from its leak-free LM);
- the **sizes** (embedding, hidden, layers, one way or both; for the same task, what the head reads too) come from the
  model: a flag that contradicts them is refused in one line;
- the **vocabulary** is the model's: a character of the data it lacks is refused in one line, with where it is and
  the fix: `--extend-vocab` adds a row for each new character to the embedding and the LM head (a `chars` or `text8`
  model becomes a `chars` one whose old ids stay), `--unk` adds an `<unk>` row where the new characters go. A model
  that has an `<unk>` reads them as it.

The model is resolved once (`starting_model`), before any data is read or anything is written; the weights are loaded
through the task's class `from_pretrained` (`build_model`), so missing parts start as a fresh model's do.
"""

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..models.tokenization_char_gru import Vocabulary

# The settings a starting model decides (see `adopt_sizes`): its backbone's sizes, and for one of the same task, its
# directions and what its head reads. (An LM reads one way; a classifier or tagger made from it may read both: the
# LM's GRU is its forward direction, the backward one starts fresh.)
BACKBONE_SIZES = ("embedding_size", "hidden_size", "num_hidden_layers")
HEAD_SETTINGS = (
    "bidirectional",
    "classifier_readout",
    "ngram_range",
    "ngram_buckets",
    "ngram_embedding_size",
    "ngram_linear",
    "ngram_window",
)
HEADS = ("lm_head", "classifier")  # each model class's head module (the rest is the backbone, `char_gru`)


@dataclasses.dataclass
class StartingModel:
    source: str  # what was asked for: a folder or a Hub id
    revision: str | None
    folder: Path  # where its files are (a Hub id's snapshot in the cache)
    commit: str | None  # a Hub model's commit (its snapshot's)
    config: object  # its CharGRUConfig
    task: str  # the registered task whose model it is ("lm", "classifier", "tagger")
    vocabulary: Vocabulary

    @property
    def on_hub(self) -> bool:
        return self.commit is not None

    @property
    def kind(self) -> str:
        return {"lm": "an LM"}.get(self.task, f"a {self.task}")

    def describe(self) -> str:
        where = f"{self.source} at {self.commit[:12]}" if self.on_hub else self.source
        return f"{where} ({self.kind}, {self.vocabulary.kind} vocabulary of {self.vocabulary.size} symbols)"


_RESOLVED: dict = {}


def starting_model(config) -> StartingModel | None:
    """The model `config` starts from (resolved and checked once a process), or None."""
    source = getattr(config, "model_name_or_path", None)
    if not source:
        if getattr(config, "revision", None):
            raise UserError("--revision names a revision of --model-name-or-path: give that too")
        return None
    key = (str(source), config.revision)
    if key not in _RESOLVED:
        _RESOLVED[key] = _resolve(str(source), config.revision)
    return _RESOLVED[key]


def _resolve(source: str, revision: str | None) -> StartingModel:
    from ..models.auto import check_model_folder, looks_like_repo_id, task_of_folder
    from ..models.configuration_char_gru import CharGRUConfig

    commit = None
    if Path(source).exists():
        if revision:
            raise UserError(f"--revision {revision}: {source} is a local folder; a revision is a Hub model's")
        folder = check_model_folder(source)
    elif looks_like_repo_id(source):
        folder = download_model(source, revision)
        commit = folder.name  # the snapshot folder is named by its commit
        check_model_folder(folder)
    else:
        raise UserError(
            f"--model-name-or-path {source}: no such folder, and not a Hub id (user/name); check the path or the id"
        )
    settings_class = task_of_folder(folder)
    config = CharGRUConfig.from_pretrained(folder)
    return StartingModel(source, revision, folder, commit, config, settings_class.task, Vocabulary.from_config(config))


def download_model(repo_id: str, revision: str | None, flag: str = "--model-name-or-path") -> Path:
    """
    A Hub model's files (weights, config, tokenizer) into the cache; its snapshot folder (named by its commit). Errors
    in one line, naming the `flag` the id came from.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=["*.json", "*.safetensors"]))
    except RevisionNotFoundError:
        raise UserError(
            f"--revision {revision}: {repo_id} has no such revision on the Hub; name a branch, tag or commit it has"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise UserError(
            f"{flag} {repo_id}: no such model on the Hub (or it is private or gated: log in with "
            "`hf auth login`); check the id"
        ) from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise UserError(
            f"{flag} {repo_id}: could not be downloaded ({error.__class__.__name__}); check the network "
            "(or HF_HUB_OFFLINE, HF_ENDPOINT)"
        ) from None


# -- the vocabulary ---------------------------------------------------------------------------------------------------
def starting_vocabulary(start: StartingModel, found: set, where, config) -> tuple[Vocabulary, str]:
    """
    The run's vocabulary when it starts from `start`, for data holding the characters `found`: the model's, or (with
    `--extend-vocab` / `--unk`) the model's with rows added; `where(character)` says where one first occurs. A
    character the model lacks is otherwise an error naming it, where it is, and the fix.
    """
    vocabulary = start.vocabulary
    if vocabulary.kind == "bytes" or vocabulary.unk:  # every character has an id (its bytes, or <unk>)
        reason = "bytes" if vocabulary.kind == "bytes" else "chars (the others read as <unk>)"
        return vocabulary, f"{reason}: the starting model's, {start.source}"
    known = set(vocabulary.symbols)
    unknown = sorted(found - known)
    if not unknown:
        return vocabulary, f"{vocabulary.kind}: the starting model's, {start.source}"
    base = "".join(vocabulary.symbols) if vocabulary.kind == "text8" else vocabulary.characters
    if config.extend_vocab:
        extended = Vocabulary("chars", base + "".join(unknown))
        return extended, (
            f"chars: the starting model's {vocabulary.size} symbols ({start.source}) and {len(unknown)} new "
            f"({''.join(unknown)!r}: --extend-vocab, new embedding and output rows)"
        )
    if config.unk:
        return Vocabulary("chars", base, unk=True), (
            f"chars: the starting model's {vocabulary.size} symbols ({start.source}) and <unk> for {len(unknown)} "
            "others (--unk)"
        )
    shown = "".join(unknown[:20]) + ("..." if len(unknown) > 20 else "")
    raise DataError(
        f"{where(unknown[0])}: {unknown[0]!r} is not in the vocabulary of {start.source} ({vocabulary.kind}, "
        f"{vocabulary.size} symbols; the data has {len(unknown)} characters it lacks: {shown!r}); pass "
        "--extend-vocab to add a row for each (new embedding and output rows), or --unk to read them as <unk>"
        + (", or --normalize into text8 form" if vocabulary.kind == "text8" else "")
    )


def text_position(splits: list):
    """`where(character)` for labeled texts (`LabeledTexts` splits): the first file and row holding it."""

    def where(character: str) -> str:
        for split in splits:
            for row, text in enumerate(split.texts):
                if character in text:
                    return f"{split.source}, row {row + 1}, character {text.index(character) + 1}"
        return "the data"

    return where


def id_position(splits: dict, source: str):
    """`where(character)` for a corpus cached as local `chars` ids (each split's `characters` in the order met)."""

    def where(character: str) -> str:
        for split, ids in splits.items():
            if ids is not None and character in ids.characters:
                position = int(np.flatnonzero(np.asarray(ids) == ids.characters.index(character))[0])
                return f"{source} ({split}), character {position + 1}"
        return source

    return where


# -- the sizes ------------------------------------------------------------------------------------------------------
def adopt_sizes(config, start: StartingModel) -> dict:
    """
    Set `config`'s sizes (and, for a model of the same task, what its head reads) to `start`'s; a flag given that
    contradicts one is refused. Returns what was taken ({name: value}).
    """
    from .settings import flag_name

    names = [name for name in BACKBONE_SIZES if hasattr(config, name)]
    if start.task == config.task:
        names += [name for name in HEAD_SETTINGS if hasattr(config, name)]
    taken = {}
    for name in names:
        value = getattr(start.config, name)
        if name == "ngram_range" and value is not None:
            value = list(value)
        current = getattr(config, name)
        if name in config.explicit_settings and current != value:
            raise UserError(
                f"--{flag_name(name)} {current}: {start.source} has {name} {value}, and a run that starts from a model "
                "takes its sizes from it; leave the flag out (or train from scratch without --model-name-or-path)"
            )
        setattr(config, name, value)
        taken[name] = value
    return taken


# -- the weights ------------------------------------------------------------------------------------------------------
def build_model(
    start: StartingModel, task: str, model_class, model_config, vocabulary: Vocabulary, label_names
) -> tuple:
    """
    The run's model (of the registered `task`), started from `start`: its weights where they fit (see the module
    docstring), the rest as a fresh model's. Returns (model, what it says of the start: {"kept", "new"}).
    """
    import torch
    from safetensors.torch import load_file
    from transformers.utils import logging

    same_vocabulary = vocabulary.symbols == start.vocabulary.symbols
    # (mismatched sizes: a head of other labels, rows of a larger vocabulary; they start fresh, then are filled in.
    # transformers' own load report is left out: the run prints what was kept and what is new.)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(
            start.folder, config=model_config, ignore_mismatched_sizes=True, output_loading_info=True
        )
    finally:
        logging.set_verbosity(verbosity)
    fresh = set(info["missing_keys"]) | {key for key, *_ in info["mismatched_keys"]}
    if not same_vocabulary:  # rows of the larger vocabulary: the old ones are copied in below
        fresh -= {"char_gru.embeddings.weight", "lm_head.weight", "lm_head.bias"}
    head = next(name for name in HEADS if hasattr(model, name))
    # The same head: a model of the same task, predicting the same labels in the same order (an LM: its symbols).
    same_head = start.task == task and (label_names is None or _labels(start.config) == list(label_names))
    kept_head = not any(key.startswith(f"{head}.") for key in fresh)
    if kept_head and not same_head:
        # A head that fits in shape but answers other labels (or a classifier's head in a tagger): it starts fresh.
        module = getattr(model, head)
        for parameter in module.parameters():  # (the init helpers skip tensors marked as loaded)
            parameter._is_hf_initialized = False
        with torch.no_grad():
            model._init_weights(module)
        kept_head = False
    if not same_vocabulary:
        _copy_known_rows(model, load_file(start.folder / "model.safetensors"), start.vocabulary, vocabulary)
    new = [] if kept_head else [f"the head ({head})"]
    new += [f"{key.split('.')[0]}" for key in sorted(fresh) if not key.startswith(("char_gru.", f"{head}."))]
    fresh_gru = sorted(key.split(".")[-1] for key in fresh if key.startswith("char_gru.gru."))
    gru = "GRU"
    if fresh_gru and all(name.endswith("_reverse") for name in fresh_gru):
        gru, new = "the GRU's forward direction", [*new, "the GRU's backward direction"]
    elif fresh_gru:  # (a deeper bidirectional GRU: its upper layers read both directions, wider than the LM's)
        gru, new = "the GRU weights that fit", [*new, f"GRU {', '.join(fresh_gru)}"]
    added = vocabulary.size - start.vocabulary.size
    embedding = f"the embedding ({added} new rows)" if not same_vocabulary else "the embedding"
    kept = [f"{embedding} and {gru}"] + (["the head"] if kept_head else [])
    return model, {"kept": kept, "new": sorted(set(new))}


def _labels(config) -> list:
    if not getattr(config, "id2label", None):
        return []
    return [str(config.id2label[index]) for index in range(len(config.id2label))]


def _copy_known_rows(model, state: dict, old: Vocabulary, new: Vocabulary):
    """An extended vocabulary: each old symbol's embedding (and LM head) row into its new id; the padding row too."""
    import torch

    old_ids = list(range(old.size))
    new_ids = [new.to_id[symbol] for symbol in old.symbols]
    with torch.no_grad():
        embedding = model.char_gru.embeddings.weight
        saved = state["char_gru.embeddings.weight"]
        embedding[new_ids] = saved[old_ids].to(embedding.dtype)
        embedding[new.size] = saved[old.size].to(embedding.dtype)  # the padding row (never read: kept as it was)
        if hasattr(model, "lm_head") and "lm_head.weight" in state:
            model.lm_head.weight[new_ids] = state["lm_head.weight"][old_ids].to(model.lm_head.weight.dtype)
            model.lm_head.bias[new_ids] = state["lm_head.bias"][old_ids].to(model.lm_head.bias.dtype)


def check_task_vocabulary(task, start: StartingModel):
    """Data whose vocabulary was fixed by the task (the exercise's text8) must be the model's, or extend it."""
    vocabulary, model_vocabulary = task.vocabulary, start.vocabulary
    if vocabulary.symbols[: len(model_vocabulary.symbols)] == model_vocabulary.symbols:
        return  # the model's, or the model's with rows added after its own
    raise UserError(
        f"the run's data is read in a {vocabulary.kind} vocabulary of {vocabulary.size} symbols, and "
        f"{start.describe()} reads another; start from a model of the data's vocabulary"
    )
