"""
The exercise's files (packaged with hf_charnn in `text8_files/`, or from a folder) and their `datasets` views.

- `load_exercise_dataset()`: the whole exercise as one `DatasetDict`.
- `load_lm_texts`: the LM's training and dev texts; `load_classification_examples`: the vowel/consonant examples,
  which `classification_dataset` turns into `input_ids` (20 ids) and `labels` (0 consonant, 1 vowel).
- `example_windows`: where examples occur in a text (the LM's targets that a leak-free LM must not see).
"""

import os
import random
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from ..data.sources import encode_text, read_text_file
from ..errors import DataError, UserError
from ..models.tokenization_char_gru import CHAR_TO_ID, normalize_text

DATA_DIR_ENV = "HF_CHARNN_DATA"
# The exercise files ship inside the package (see text8_files/SOURCE.md): the default when no folder is given.
PACKAGED_DATA_DIR = Path(__file__).resolve().parent / "text8_files"
VOWELS = "aeiou"
CONSONANTS = "bcdfghjklmnpqrstvwxyz"
# The exercise's labels as groups of next letters: the LM-transfer recipe's zero-shot head and the demo's Vowel tab.
VOWEL_GROUPS = {"consonant": CONSONANTS, "vowel": VOWELS}
VOWEL_IDS = [CHAR_TO_ID[vowel] for vowel in VOWELS]
SPACE_ID = CHAR_TO_ID[" "]
LM_TRAIN_FILE = "text8-100k.txt"
LM_DEV_FILE = "text8-dev.txt"
EXAMPLE_LENGTH = 20


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """`--data-dir`, else $HF_CHARNN_DATA, else the exercise files packaged with hf_charnn; the folder must exist."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or PACKAGED_DATA_DIR
    path = Path(chosen)
    if not path.is_dir():
        raise UserError(f"data folder {path} does not exist: pass --data-dir with the folder of the exercise files")
    return path


def read_examples(path: str | os.PathLike, length: int = EXAMPLE_LENGTH, normalize: bool = False) -> list[str]:
    """One example a line, each exactly `length` text8 characters; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path, --data-dir or ${DATA_DIR_ENV})")
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if not lines:
        raise DataError(f"{path}: file is empty; expected one {length}-character example a line")
    examples = []
    for number, line in enumerate(lines, start=1):
        if normalize:
            line = normalize_text(line)[:length].rjust(length)
        if len(line) != length:
            raise DataError(
                f"{path}, line {number}: example has {len(line)} characters, expected {length} "
                f"(text8 characters, spaces included, with no trailing whitespace)"
            )
        encode_text(line, source=f"{path}, line {number}")
        examples.append(line)
    return examples


def load_lm_texts(data_dir, normalize: bool = False) -> tuple[str, str]:
    """(training text, dev text) from the exercise's data folder."""
    folder = resolve_data_dir(data_dir)
    return read_text_file(folder / LM_TRAIN_FILE, normalize), read_text_file(folder / LM_DEV_FILE, normalize)


def load_classification_examples(data_dir, split: str, normalize: bool = False) -> tuple[list[str], list[str]]:
    """(consonant examples, vowel examples) of a split ("train" or "dev")."""
    folder = resolve_data_dir(data_dir)
    return (
        read_examples(folder / f"{split}-consonant-examples.txt", normalize=normalize),
        read_examples(folder / f"{split}-vowel-examples.txt", normalize=normalize),
    )


def load_exercise_dataset(data_dir=None, normalize: bool = False) -> DatasetDict:
    """
    The whole exercise as one `DatasetDict` (the packaged files unless `data_dir` / $HF_CHARNN_DATA say otherwise):
    `lm_train` and `lm_dev` hold one row each, the LM's training text and dev text (`text`); `train` and `dev`
    hold the vowel/consonant examples (`text`, 20 characters, and `label`, a `ClassLabel`: consonant 0, vowel 1).
    """
    train_text, dev_text = load_lm_texts(data_dir, normalize)
    example_features = Features({"text": Value("string"), "label": ClassLabel(names=["consonant", "vowel"])})
    splits = {"lm_train": Dataset.from_dict({"text": [train_text]}), "lm_dev": Dataset.from_dict({"text": [dev_text]})}
    for split in ("train", "dev"):
        consonants, vowels = load_classification_examples(data_dir, split, normalize)
        splits[split] = Dataset.from_dict(
            {"text": consonants + vowels, "label": [0] * len(consonants) + [1] * len(vowels)}, features=example_features
        )
    return DatasetDict(splits)


def example_windows(text: str, examples: list[str]) -> list[tuple[int, int]]:
    """
    (start, end) of every occurrence in `text` of each example together with its next character: the 21-char
    windows an LM must never be trained to predict if a classifier built on it is scored on those examples.
    """
    spans = []
    for example in set(examples):
        position = text.find(example)
        while position != -1:
            spans.append((position, min(position + len(example) + 1, len(text))))
            position = text.find(example, position + 1)
    return sorted(spans)


def classification_dataset(
    consonant_examples: list[str], vowel_examples: list[str], prefix_labels: bool = False
) -> Dataset:
    """
    Rows of `input_ids` (int64, length 20) and `labels`, consonants first.

    With `prefix_labels`, `labels` has one entry per position: whether the character after that prefix is a vowel
    (1) or a consonant (0), -100 where it is a space; the last entry is the example's own label. Each training
    string then teaches up to 20 contexts instead of one, from the same training data.
    """
    examples = list(consonant_examples) + list(vowel_examples)
    ids = (
        encode_text("".join(examples)).reshape(len(examples), -1).astype(np.int64)
        if examples
        else np.zeros((0, EXAMPLE_LENGTH), np.int64)
    )
    labels = np.array([0] * len(consonant_examples) + [1] * len(vowel_examples), dtype=np.int64)
    if prefix_labels:
        next_chars = ids[:, 1:]
        is_vowel = np.isin(next_chars, VOWEL_IDS).astype(np.int64)
        prefix = np.where(next_chars == SPACE_ID, -100, is_vowel)
        labels = np.concatenate([prefix, labels[:, None]], axis=1)
    return Dataset.from_dict({"input_ids": ids, "labels": labels}).with_format("torch")


def prepare_exercise_data(
    corpus: str,
    out_dir: str | os.PathLike,
    train_chars: int = 100_000,
    dev_chars: int = 500,
    test_chars: int = 500,
    train_examples: int = 5000,
    dev_examples: int = 500,
    seed: int = 0,
) -> dict:
    """
    Write exercise-format files derived deterministically from a text8-form corpus: the first `train_chars`
    for training, then held-out dev and test spans; train vowel/consonant examples are drawn from the training
    span and dev examples from a held-out span after the test span (so, unlike the original exercise files, dev
    examples are not substrings of the training text).
    """
    held_out_examples_start = train_chars + dev_chars + test_chars
    needed = held_out_examples_start + 20 * dev_examples
    if len(corpus) < needed:
        raise DataError(f"corpus has {len(corpus)} characters; preparing the exercise files needs {needed}")
    encode_text(corpus[:needed], source="corpus")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spans = {
        LM_TRAIN_FILE: corpus[:train_chars],
        LM_DEV_FILE: corpus[train_chars : train_chars + dev_chars],
        "text8-test.txt": corpus[train_chars + dev_chars : held_out_examples_start],
    }
    for name, text in spans.items():
        (out / name).write_text(text, encoding="utf-8")
    rng = random.Random(seed)
    example_spans = {
        "train": (0, train_chars, train_examples),
        "dev": (held_out_examples_start, len(corpus), dev_examples),
    }
    counts = {}
    for split, (start, end, wanted) in example_spans.items():
        by_label = {"consonant": [], "vowel": []}
        for position in _example_positions(corpus, start, end, rng):
            label = "vowel" if corpus[position + EXAMPLE_LENGTH] in VOWELS else "consonant"
            if len(by_label[label]) < wanted:
                by_label[label].append(corpus[position : position + EXAMPLE_LENGTH])
            if all(len(examples) == wanted for examples in by_label.values()):
                break
        for label, examples in by_label.items():
            if len(examples) < wanted:
                raise DataError(f"corpus span too short for {wanted} {split} {label} examples")
            (out / f"{split}-{label}-examples.txt").write_text("\n".join(examples) + "\n", encoding="utf-8")
        counts[split] = {label: len(examples) for label, examples in by_label.items()}
    return {"out_dir": str(out), **{name: len(text) for name, text in spans.items()}, "examples": counts}


def _example_positions(corpus: str, start: int, end: int, rng: random.Random):
    """Random starts of 20-char contexts whose next character is a letter (the exercise predicts letters)."""
    last = min(end, len(corpus)) - EXAMPLE_LENGTH - 1
    positions = list(range(start, last))
    rng.shuffle(positions)
    for position in positions:
        if corpus[position + EXAMPLE_LENGTH] != " ":
            yield position
