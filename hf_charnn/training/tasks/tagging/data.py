"""
The tagger's data: texts with one tag per character.

- JSON lines (`.jsonl` / `.json`), one object a line: `{"text": ..., "tags": [one tag per character]}`, or
  `{"text": ..., "spans": [[start, end, label], ...]}` (end excluded; the characters of a span get `B-label`, then
  `I-label`, the rest `O`);
- any plain text with `--derive`, which needs no labels:
  - `word-boundaries`: the spaces removed, each character tagged `B-WORD` where a word starts, else `I-WORD` (a real
    task for scripts written without spaces, and for text8);
  - `truecase`: the text lowercased, each character tagged `UPPER` where it was a capital, else `O`.

Long texts are cut into rows of at most `max_length` characters (at a word's end where a derived task has words), as
a corpus is cut into windows. The tags found in the training data become the model's `id2label`, sorted.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from ....data.cache import digest
from ....data.sources import read_text_file
from ....data.vocabulary import choose_texts_vocabulary
from ....errors import DataError
from ....models.tokenization_char_gru import Vocabulary
from . import DERIVED_TASKS, SHUFFLED_RUN

WORD_START, WORD_INSIDE = "B-WORD", "I-WORD"
UPPER, OUTSIDE = "UPPER", "O"
JSON_SUFFIXES = (".jsonl", ".json")


@dataclasses.dataclass
class TaggedTexts:
    """A split: texts, their tags (a list of tag names per text, one a character), and where they came from."""

    texts: list[str]
    tags: list[list[str]]
    source: str


# -- deriving tags from plain text ----------------------------------------------------------------------------------
def word_boundary_rows(text: str, max_length: int) -> tuple[list[str], list[list[str]]]:
    """The text's words run together in rows of at most `max_length` characters, each word's first one `B-WORD`."""
    texts, tags, row, row_tags = [], [], [], []
    for word in text.split():
        for start in range(0, len(word), max_length):  # a word longer than a row is cut (its pieces start words)
            piece = word[start : start + max_length]
            if row and len(row) + len(piece) > max_length:
                texts.append("".join(row))
                tags.append(row_tags)
                row, row_tags = [], []
            row += piece
            row_tags += [WORD_START] + [WORD_INSIDE] * (len(piece) - 1)
    if row:
        texts.append("".join(row))
        tags.append(row_tags)
    return texts, tags


def truecase_rows(text: str, max_length: int) -> tuple[list[str], list[list[str]]]:
    """Each line of the text, lowercased, in rows of at most `max_length` characters; capitals tagged `UPPER`."""
    texts, tags = [], []
    for line in text.splitlines():
        while line.strip():
            cut = len(line) if len(line) <= max_length else (line.rfind(" ", 0, max_length) + 1 or max_length)
            piece, line = line[:cut], line[cut:]
            lowered = piece.lower()
            if len(lowered) != len(piece):  # (a few characters lowercase to two: keep them as they are)
                lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in piece)
            texts.append(lowered)
            tags.append([UPPER if c != low else OUTSIDE for c, low in zip(piece, lowered)])
    return texts, tags


DERIVE = {"word-boundaries": word_boundary_rows, "truecase": truecase_rows}


def shuffled_copies_phrase(copies: int) -> str:
    """How the recipe, the run's first lines and the card name the copies: "1 shuffled copy of its words"."""
    return f"{copies} shuffled cop{'y' if copies == 1 else 'ies'} of its words (runs of {SHUFFLED_RUN} words)"


def with_shuffled_copies(split: TaggedTexts, copies: int, max_length: int, seed: int) -> TaggedTexts:
    """
    Word-boundary rows and `copies` more of the same words, in runs of SHUFFLED_RUN words in a random order
    (seeded), cut into rows as the text was: a word's close neighbours stay, the text's order goes. The rows of one
    text put each word beside the same neighbours every epoch, and the model learns those neighbours (measured on
    text8: 99 % of training characters right, 96 % of validation's); in a shuffled copy a word ends where the next
    word is new to it, so what marks the boundary is the words themselves.
    """
    words = []
    for text, tags in zip(split.texts, split.tags):
        starts = [position for position, tag in enumerate(tags) if tag == WORD_START] + [len(text)]
        words += [text[start:end] for start, end in zip(starts, starts[1:])]
    runs = [words[start : start + SHUFFLED_RUN] for start in range(0, len(words), SHUFFLED_RUN)]
    rng = np.random.default_rng(seed)
    texts, tags = list(split.texts), list(split.tags)
    for _ in range(copies):
        order = rng.permutation(len(runs))
        copy_texts, copy_tags = word_boundary_rows(" ".join(word for i in order for word in runs[i]), max_length)
        texts += copy_texts
        tags += copy_tags
    return TaggedTexts(texts, tags, split.source)


# -- reading labeled rows -------------------------------------------------------------------------------------------
def _tags_of_row(row: dict, where: str, text_column: str) -> tuple[str, list[str]]:
    text = row.get(text_column)
    if not isinstance(text, str) or not text:
        raise DataError(f"{where}: no text in {text_column!r}; give each row a non-empty text")
    if row.get("tags") is not None:
        tags = row["tags"]
        if not isinstance(tags, list) or len(tags) != len(text):
            found = len(tags) if isinstance(tags, list) else type(tags).__name__
            raise DataError(
                f"{where}: {len(text)} characters but {found} tags; give one tag per character (or spans instead)"
            )
        return text, [str(tag) for tag in tags]
    if row.get("spans") is not None:
        tags = [OUTSIDE] * len(text)
        for span in row["spans"]:
            if not (isinstance(span, list | tuple) and len(span) == 3):
                raise DataError(f"{where}: span {span!r} is not [start, end, label]")
            start, end, label = span
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                raise DataError(
                    f"{where}: span {span!r} does not lie inside the text (0 <= start < end <= {len(text)}, end "
                    "excluded)"
                )
            if any(tag != OUTSIDE for tag in tags[start:end]):
                raise DataError(f"{where}: span {span!r} overlaps another; spans must not overlap")
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        return text, tags
    raise DataError(f"{where}: neither `tags` nor `spans`; give one (or pass --derive for plain text)")


def read_tagged_file(path: str | Path, derive: str | None, max_length: int, text_column: str = "text") -> TaggedTexts:
    """A split from a file: JSON lines with tags or spans, or plain text with `derive` tags; rows of `max_length`."""
    path = Path(path)
    if derive:
        text = read_text_file(str(path), as_is=True)
        if not text.strip():
            raise DataError(f"{path}: no text to derive {derive} tags from; give a file with text")
        texts, tags = DERIVE[derive](text, max_length)
        return TaggedTexts(texts, tags, str(path))
    if path.suffix.lower() not in JSON_SUFFIXES:
        raise DataError(
            f"{path}: a tagger reads JSON lines ({', '.join(JSON_SUFFIXES)}) with tags or spans; for plain text pass "
            f"--derive ({' or '.join(DERIVED_TASKS)})"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path)")
    texts, tags = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not a JSON object ({error.msg}); one object a line") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: not a JSON object; one object a line")
            text, row_tags = _tags_of_row(row, where, text_column)
            for start in range(0, len(text), max_length):
                texts.append(text[start : start + max_length])
                tags.append(row_tags[start : start + max_length])
    if not texts:
        raise DataError(f"{path}: no rows; give one JSON object a line, with a text and its tags or spans")
    return TaggedTexts(texts, tags, str(path))


def held_out(split: TaggedTexts, percentage: float, seed: int, contiguous: bool) -> tuple[TaggedTexts, TaggedTexts]:
    """
    (training rows, validation rows): `percentage` of the rows, drawn with the seed; or, `contiguous` (rows cut from
    one running text), its last rows, as an LM's validation is the end of its text. Rows drawn from the middle of a
    text share its topics with their neighbours and flatter the model: measured on text8's word boundaries, a random
    5 % of text8-100k's rows scored 95 % boundary F1 where unseen text scored 87 %.
    """
    count = round(len(split.texts) * percentage / 100)
    order = np.arange(len(split.texts)) if contiguous else np.random.default_rng(seed).permutation(len(split.texts))
    if contiguous:
        order = np.concatenate([order[-count:], order[:-count]]) if count else order
    if count < 1 or count >= len(order):
        raise DataError(
            f"{split.source}: too few rows ({len(order)}) to hold {percentage:g}% out for validation; give a "
            "--validation-file"
        )
    chosen, rest = sorted(order[:count]), sorted(order[count:])

    def subset(rows, name):
        return TaggedTexts([split.texts[i] for i in rows], [split.tags[i] for i in rows], name)

    where = "its last" if contiguous else "held out"
    return subset(rest, split.source), subset(chosen, f"{split.source} ({where} {percentage:g}%)")


def _fingerprint(split: TaggedTexts) -> str:
    """A split's characters and the digest of its rows and tags: what a resumed run checks its data against."""
    rows = (
        f"{text}\t{' '.join(tags)}\n".encode("utf-8", "surrogatepass") for text, tags in zip(split.texts, split.tags)
    )
    return f"{sum(len(text) for text in split.texts)}:{digest(rows)}"


def check_known_tags(split: TaggedTexts, label_names: list[str], known_by: str):
    """A tag outside `label_names` (the training data's, or a model's: `known_by`) is an error naming its row."""
    known = set(label_names)
    for row, tags in enumerate(split.tags):
        unknown = sorted(set(tags) - known)
        if unknown:
            raise DataError(
                f"{split.source}, row {row + 1}: tag {unknown[0]!r} does not appear in {known_by} (its tags: "
                f"{', '.join(label_names)})"
            )


def tagged_file_for_model(
    path: str | Path, label_names: list[str], vocabulary: Vocabulary, derive: str | None, max_length: int, text_column
) -> tuple[list[str], list[list[int]]]:
    """
    A tagged file to score a trained model on, read as training reads its files: its rows' texts (checked against the
    model's vocabulary) and their tags as the model's tag ids (`label_names`, in id order). Errors name file and row.
    """
    split = read_tagged_file(path, derive, max_length, text_column)
    check_known_tags(split, label_names, "the model's tags")
    return split.texts, [labels.tolist() for labels in TaggedRows(split, vocabulary, label_names).labels]


@dataclasses.dataclass
class TaggedData:
    train: TaggedTexts
    validation: TaggedTexts
    test: TaggedTexts | None
    label_names: list[str]
    vocabulary: Vocabulary
    vocabulary_reason: str
    description: str
    fingerprint: dict


def load_tagged_data(config) -> TaggedData:
    """The run's splits (from its files), the tag names, the vocabulary (chosen as for labeled texts)."""
    if not config.train_file:
        raise DataError("no tagged texts named: pass --train-file (JSON lines, or plain text with --derive)")

    def read(path):
        return read_tagged_file(path, config.derive, config.max_length, config.text_column)

    splits = {"train": read(config.train_file)}
    for name, path in (("validation", config.validation_file), ("test", config.test_file)):
        if path:
            splits[name] = read(path)
    label_names = sorted({tag for row in splits["train"].tags for tag in row})
    if len(label_names) < 2:
        raise DataError(f"{config.train_file}: every character has the tag {label_names[0]!r}; a tagger needs two")
    for name in ("validation", "test"):
        if name in splits:
            check_known_tags(splits[name], label_names, "the training data")
    vocabulary, reason = choose_texts_vocabulary(list(splits.values()), config)
    if "validation" not in splits:
        splits["train"], splits["validation"] = held_out(
            splits["train"], config.validation_split_percentage, config.seed, contiguous=bool(config.derive)
        )
    fingerprint = {name: _fingerprint(split) for name, split in splits.items()}
    how = f", tags derived: {config.derive}" if config.derive else ""
    return TaggedData(
        splits["train"],
        splits["validation"],
        splits.get("test"),
        label_names,
        vocabulary,
        reason,
        f"file {Path(config.train_file).name}{how}",
        fingerprint,
    )


# -- rows for the loop ----------------------------------------------------------------------------------------------
class TaggedRows(torch.utils.data.Dataset):
    """Rows of `input_ids` and `labels` (a tag id per position), for `data.labeled.PaddedBatches`."""

    def __init__(self, split: TaggedTexts, vocabulary: Vocabulary, label_names: list[str]):
        to_id = {name: index for index, name in enumerate(label_names)}
        self.ids, self.labels = [], []
        for row, (text, tags) in enumerate(zip(split.texts, split.tags)):
            try:
                ids = vocabulary.encode(text, source=f"{split.source}, row {row + 1}")
            except ValueError as error:  # a character outside the vocabulary: the message names it and where
                raise DataError(str(error)) from None
            if len(ids) != len(tags):  # a bytes vocabulary: a character may be several symbols
                raise DataError(
                    f"{split.source}, row {row + 1}: {len(ids)} symbols for {len(tags)} tags; a tagger reads one "
                    "symbol a character (use --vocab chars or text8, not bytes)"
                )
            self.ids.append(torch.from_numpy(ids))
            self.labels.append(torch.tensor([to_id[tag] for tag in tags], dtype=torch.long))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}
