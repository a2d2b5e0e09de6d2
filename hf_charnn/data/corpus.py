"""
LM corpora: the named source of a run's characters, in the run's vocabulary (in the style of transformers' `run_clm`):
- plain-text files (`--train-file`, `--validation-file`, `--test-file`; `.txt`, `.gz` or `.zip`);
- a `datasets` dataset (`--dataset-name`, a Hub id or a local folder / builder; its `train`, `validation`, `test`);
- the whole text8 (`--corpus text8`): fetched once into the `datasets` download cache, split 90M / 5M / 5M.

A corpus is encoded once, block by block, into the cache (`cache.py`) and memory-mapped: a second run starts in a
second, and the 100M characters of text8 never exist as a Python string or an int64 copy. `windows.LMWindows` cuts
the training windows out of the ids on the fly.
"""

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..models.tokenization_char_gru import Vocabulary
from .cache import content_id
from .sources import TEXT8_URL, dataset_splits_as_ids, file_ids, text8_ids
from .vocabulary import choose_corpus_vocabulary

TEXT8_SPLIT = (0.90, 0.05)  # train, validation; the rest is test: 90M / 5M / 5M of text8's 100M characters


@dataclasses.dataclass
class Corpus:
    """Character ids (uint8; memory-mapped for cached corpora) of each split, and where they came from."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray | None = None
    description: str = "text"
    fingerprint: dict = dataclasses.field(default_factory=dict)  # {split: what it holds}, for checked resumes
    vocabulary: Vocabulary = dataclasses.field(default_factory=Vocabulary)  # what the ids are ids of
    vocabulary_reason: str = "text8"

    def __post_init__(self):
        splits = {"train": self.train, "validation": self.validation, "test": self.test}
        for split, ids in splits.items():
            if ids is not None and split not in self.fingerprint:
                self.fingerprint[split] = content_id(ids)


def split_off_validation(ids: np.ndarray, percentage: float, source: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train, validation, their fingerprints): the last `percentage` % of a corpus held out, as views (no copies)."""
    held_out = int(len(ids) * percentage / 100)
    if not 0 < percentage < 100 or held_out < 2:
        raise UserError(
            f"{source}: no validation text given, and {percentage} % of it is too little to hold out; pass "
            "--validation-file"
        )
    whole = content_id(ids)
    return ids[:-held_out], ids[-held_out:], {"train": f"{whole}[:-{held_out}]", "validation": f"{whole}[-{held_out}:]"}


def load_corpus(config) -> Corpus:
    """
    The LM corpus a `TrainingConfig` names (see the module docstring), in the vocabulary `config.vocab` asks for:
    `text8`; `chars`, the distinct characters of all its texts (training,
    validation and test, as nanoGPT's shakespeare_char and char-rnn build theirs); `bytes`; or `auto`: text8 when
    every character is a text8 symbol, else chars when there are at most 255 (256 with `--unk`), else bytes.
    `--normalize` maps the text into text8 form (so text8). The choice and why are in `Corpus.vocabulary_reason`.
    """
    if config.dataset_name:
        name = config.dataset_name
        encode_splits, description = dataset_splits_as_ids(config), f"dataset {name}"
    elif config.train_file:
        files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
        name, description = config.train_file, f"file {Path(config.train_file).name}"

        def encode_splits(encoding: str) -> dict:
            return {
                split: file_ids(path, config.normalize, encoding, config.progress_bar) if path else None
                for split, path in files.items()
            }
    elif config.corpus == "text8":
        if config.vocab not in ("auto", "text8"):
            raise UserError(f"--corpus text8 is text8 form: train it with --vocab text8 (or auto), not {config.vocab}")
        ids = text8_ids(config.text8_source or TEXT8_URL, config.progress_bar)
        first, second = (int(len(ids) * share) for share in (TEXT8_SPLIT[0], sum(TEXT8_SPLIT)))
        whole = content_id(ids)
        fingerprint = {
            "train": f"{whole}[:{first}]",
            "validation": f"{whole}[{first}:{second}]",
            "test": f"{whole}[{second}:]",
        }
        return Corpus(
            ids[:first],
            ids[first:second],
            ids[second:],
            "text8 (90% / 5% / 5%)",
            fingerprint,
            vocabulary_reason="text8: the text8 corpus",
        )
    else:
        raise UserError("no corpus named: pass --train-file, --dataset-name or --corpus text8")

    splits, vocabulary, reason = choose_corpus_vocabulary(config, encode_splits)
    fingerprint = {}
    train, validation = splits["train"], splits["validation"]
    if validation is None:
        train, validation, fingerprint = split_off_validation(train, config.validation_split_percentage, name)
    return Corpus(train, validation, splits["test"], description, fingerprint, vocabulary, reason)
