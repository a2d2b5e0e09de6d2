"""
Your own labeled texts for the classifier: CSV, TSV or JSON-lines files, or a `datasets` dataset, each with a text
column and a label column (`--text-column`, `--label-column`).

    data = load_labeled_data(config)   # a TrainingConfig with train_file or dataset_name (task "classifier")

The labels found in the training data become the model's `id2label` (a `ClassLabel`'s names, in its order, when the
dataset has one; else the values sorted: numerically when they are all integers). A label column of lists (JSON lines
`"label": ["a", "b"]`, a `datasets` sequence), a `label_separator` (CSV / TSV cells like `a|b`) or `multi_label` makes
the data multi-label: each text has a set of labels, at least one (transformers' `multi_label_classification`).
Texts have any length: batches are padded on the right and the GRU reads the whole width unpacked, the padding kept
out of each row's state and readout through `attention_mask` (see `PaddedBatches`). Without a validation file or
split, a stratified `validation_split_percentage` of each class is held out (multi-label: of each first label). The
vocabulary is chosen from all the texts as an LM's is (`--vocab auto|text8|chars|bytes`, see `vocabulary.py`).
"""

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, UserError
from ..evaluation import label_matrix
from ..models.modeling_char_gru import pad_ids
from ..models.tokenization_char_gru import Vocabulary, normalize_text
from .cache import digest
from .sources import load_dataset_splits
from .vocabulary import choose_texts_vocabulary

FILE_FORMATS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
}


@dataclasses.dataclass
class LabeledTexts:
    """
    One split: texts, their label ids (into `LabeledData.label_names`; for multi-label data a sorted list of ids a
    text), and where they came from.
    """

    texts: list[str]
    labels: list
    source: str


@dataclasses.dataclass
class LabeledData:
    train: LabeledTexts
    validation: LabeledTexts
    test: LabeledTexts | None
    label_names: list[str]
    vocabulary: Vocabulary
    vocabulary_reason: str
    description: str
    fingerprint: dict
    multi_label: bool = False


class LabeledRows(torch.utils.data.Dataset):
    """
    Rows of `input_ids` (a text's ids, any length; its first `max_length` when given) and `labels` (its label id; for
    multi-label data, given `num_labels`, a float row of 0 / 1 a label), for `PaddedBatches`.
    """

    def __init__(
        self,
        split: LabeledTexts,
        vocabulary: Vocabulary,
        max_length: int | None = None,
        num_labels: int | None = None,
    ):
        self.ids = [torch.from_numpy(vocabulary.encode(text)[:max_length]) for text in split.texts]
        self.labels = split.labels
        self.targets = self.labels if num_labels is None else multi_hot(self.labels, num_labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.ids[index], "labels": self.targets[index]}


def multi_hot(label_sets: list[list[int]], num_labels: int) -> torch.Tensor:
    """Rows of label-id lists as a `(rows, num_labels)` float matrix of 0 / 1 (what BCE reads)."""
    return torch.from_numpy(label_matrix(label_sets, num_labels).astype(np.float32))


class PaddedBatches:
    """
    DataLoader collate function: rows padded on the right with `pad_id`, an attention mask, and the labels: one a row,
    a 0 / 1 float row a text (multi-label), or one a position (a tagger's, an integer tensor the row's length), padded
    with -100, which no loss or metric reads.
    """

    def __init__(self, pad_id: int, multi_label: bool = False):
        self.pad_id = pad_id
        self.multi_label = multi_label  # labels are 0 / 1 rows, a text's (stacked), not a position's

    def __call__(self, rows: list[dict]) -> dict:
        input_ids, attention_mask = pad_ids([row["input_ids"] for row in rows], self.pad_id)
        labels = [row["labels"] for row in rows]
        if self.multi_label:
            labels = torch.stack(labels)
        elif isinstance(labels[0], torch.Tensor) and labels[0].dim():
            per_position = torch.full_like(input_ids, -100)
            for index, row_labels in enumerate(labels):
                per_position[index, : len(row_labels)] = row_labels
            labels = per_position
        else:
            labels = torch.tensor(labels, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class LengthGroupedBatches(torch.utils.data.Sampler):
    """
    A batch sampler of rows of similar lengths, so that little of a padded batch is padding (transformers'
    `group_by_length`). Each epoch: the rows shuffled (seeded by `seed` and the epoch), cut into groups of
    `GROUP_BATCHES` batches, each group sorted by length and cut into batches, and the batches shuffled. The same seed
    and epoch give the same batches, so a resumed run skips exactly the batches it trained on.
    """

    GROUP_BATCHES = 64

    def __init__(self, lengths, batch_size: int, seed: int):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        group = self.batch_size * self.GROUP_BATCHES
        batches = []
        for start in range(0, len(order), group):
            rows = order[start : start + group]
            rows = rows[np.argsort(self.lengths[rows], kind="stable")]
            batches += [rows[i : i + self.batch_size].tolist() for i in range(0, len(rows), self.batch_size)]
        for index in rng.permutation(len(batches)):
            yield batches[index]


# -- reading
# --------------------------------------------------------------------------------------------------------------
def read_labeled_file(path: str | Path):
    """A CSV / TSV / JSON-lines file as a `datasets.Dataset`; errors name the file and what to do."""
    path = Path(path)
    if path.suffix.lower() not in FILE_FORMATS:
        raise UserError(
            f"{path}: unknown format {path.suffix or '(no suffix)'!r}; give a .csv, .tsv, .json or .jsonl file"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path)")
    if path.stat().st_size == 0:
        raise DataError(
            f"{path}: file is empty; expected a header (CSV/TSV) or one JSON object a line, with a text and a label"
        )
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError
    from datasets.utils import logging as datasets_logging

    builder, options = FILE_FORMATS[path.suffix.lower()]
    bars = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()  # a bar per small file would bury the messages (and errors) that matter
    try:
        return load_dataset(builder, data_files={"rows": str(path)}, split="rows", **options)
    except (OSError, ValueError, DatasetsError) as error:  # a parser error inside datasets/pyarrow: one line
        first_line = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        raise DataError(
            f"{path}: cannot be read as {path.suffix.lower()[1:].upper()} ({first_line[:200]}); check the file"
        ) from None
    finally:
        if bars:
            datasets_logging.enable_progress_bar()


def text_and_label_columns(
    dataset, source: str, text_column: str, label_column: str
) -> tuple[list[str], list, list[str] | None]:
    """(texts, raw labels, the ClassLabel's names or None) of a split; a missing column or an empty text is an error."""
    missing = [column for column in (text_column, label_column) if column not in dataset.column_names]
    if missing:
        flag = "--text-column" if missing[0] == text_column else "--label-column"
        raise DataError(f"{source}: no column {missing[0]!r} (columns: {', '.join(dataset.column_names)}); pass {flag}")
    texts = dataset[text_column]
    for row, text in enumerate(texts):
        if text is None or str(text) == "":
            raise DataError(
                f"{source}, row {row + 1}: empty text in column {text_column!r}; fill it in or remove the row"
            )
    labels = dataset[label_column]
    for row, label in enumerate(labels):
        if label is None or label == "":
            raise DataError(
                f"{source}, row {row + 1}: no label in column {label_column!r}; fill it in or remove the row"
            )
    from datasets import ClassLabel

    feature = dataset.features[label_column]
    feature = getattr(feature, "feature", feature)  # a list's items (multi-label): their ClassLabel, if any
    names = list(feature.names) if isinstance(feature, ClassLabel) else None
    return [str(text) for text in texts], labels, names  # (a CSV cell of digits is read as a number: it is still text)


def is_multi_label(labels: list, config) -> bool:
    """Multi-label data: a list in the label column, a `label_separator`, or `multi_label` asked for."""
    return bool(
        getattr(config, "multi_label", False)
        or getattr(config, "label_separator", None)
        or any(isinstance(label, list | tuple) for label in labels)
    )


def label_sets(labels: list, source: str, label_column: str, separator: str | None) -> list[list]:
    """
    Each row's labels as a list (multi-label data): a list as it is, a string cut at `separator`, anything else one
    label. An empty set is an error naming the row (a text with no label says nothing to train on).
    """
    sets = []
    for row, label in enumerate(labels):
        if isinstance(label, list | tuple):
            values = [value for value in label if value is not None and str(value).strip() != ""]
        elif separator and isinstance(label, str):
            values = [part.strip() for part in label.split(separator) if part.strip()]
        else:
            values = [label]
        if not values:
            raise DataError(
                f"{source}, row {row + 1}: an empty label set in column {label_column!r}; give the text at least one "
                "label or remove the row"
            )
        sets.append(list(dict.fromkeys(values)))  # each label once, in the file's order
    return sets


def _label_names(labels: list, names: list[str] | None) -> list[str]:
    """The label set of the training data: a ClassLabel's names, else its values sorted (as numbers when integers)."""
    if names is not None:
        return names
    values = set(labels)
    if all(isinstance(value, int | np.integer) and not isinstance(value, bool) for value in values):
        return [str(value) for value in sorted(values)]
    return sorted(str(value) for value in values)


def _label_ids(
    labels: list,
    names: list[str] | None,
    label_names: list[str],
    trained: set[int] | None,
    source: str,
    known_by: str = "the training data",
) -> list[int]:
    """
    Label ids of a split (for multi-label data, `labels` of lists: a sorted list of ids a row); a label the training
    data (or a model, `known_by`) lacks is an error naming the row.
    """
    to_id = {name: index for index, name in enumerate(label_names)}

    def label_id(label, row: int) -> int:
        index = int(label) if names is not None else to_id.get(str(label))
        if index is not None and index < 0:  # a ClassLabel's "no label"
            raise DataError(f"{source}, row {row + 1}: no label; fill it in or remove the row")
        if index is None or (trained is not None and index not in trained):
            shown = label_names[index] if index is not None else label
            raise DataError(
                f"{source}, row {row + 1}: label {shown!r} does not appear in {known_by} (its labels: "
                f"{', '.join(label_names[i] for i in sorted(trained)) if trained else ', '.join(label_names)})"
                + ("; every label needs training examples" if trained is not None else "")
            )
        return index

    return [
        sorted({label_id(value, row) for value in label}) if isinstance(label, list) else label_id(label, row)
        for row, label in enumerate(labels)
    ]


def stratified_split(labels: list[int], percentage: float, seed: int) -> tuple[list[int], list[int]]:
    """(training rows, validation rows): `percentage` of each class held out (at least one where it has two or more)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    train_rows, validation_rows = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        held = 0 if len(rows) < 2 else min(len(rows) - 1, max(1, round(len(rows) * percentage / 100)))
        validation_rows += rows[:held].tolist()
        train_rows += rows[held:].tolist()
    return sorted(train_rows), sorted(validation_rows)


def _subset(split: LabeledTexts, rows: list[int], source: str) -> LabeledTexts:
    return LabeledTexts([split.texts[row] for row in rows], [split.labels[row] for row in rows], source)


def _raw_splits(config) -> tuple[dict, str]:
    """
    {"train" | "validation" | "test": (dataset, source)} from the files or the `datasets` dataset, and a description.
    """
    if config.train_file:
        files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
        return {
            split: (read_labeled_file(path), str(path)) for split, path in files.items() if path
        }, f"file {Path(config.train_file).name}"
    splits, chosen = load_dataset_splits(config)
    return (
        {
            split: (splits[name], f"dataset {config.dataset_name} ({name} split)")
            for split, name in chosen.items()
            if name
        },
        f"dataset {config.dataset_name}",
    )


def load_labeled_data(config) -> LabeledData:
    """The run's labeled splits, label names and vocabulary (see the module docstring)."""
    if not (config.train_file or config.dataset_name):
        raise UserError("no labeled texts named: pass --train-file or --dataset-name")
    raw, description = _raw_splits(config)
    columns = {
        split: text_and_label_columns(dataset, source, config.text_column, config.label_column)
        for split, (dataset, source) in raw.items()
    }
    multi_label = is_multi_label(columns["train"][1], config)
    if multi_label:  # every split's labels as lists (a plain value: a set of one)
        separator = getattr(config, "label_separator", None)
        columns = {
            split: (texts, label_sets(labels, raw[split][1], config.label_column, separator), names)
            for split, (texts, labels, names) in columns.items()
        }
    train_texts, train_labels, names = columns["train"]
    every_label = [value for label in train_labels for value in label] if multi_label else train_labels
    label_names = _label_names(every_label, names)
    train = LabeledTexts(
        train_texts, _label_ids(train_labels, names, label_names, None, raw["train"][1]), raw["train"][1]
    )
    trained = {index for label in train.labels for index in label} if multi_label else set(train.labels)
    if len(trained) < 2:
        raise DataError(
            f"{train.source}: every training example has the label {label_names[min(trained)]!r}; a classifier "
            "needs "
            "examples of at least two labels"
        )
    splits = {"train": train}
    for split in ("validation", "test"):
        if split in columns:
            texts, labels, _ = columns[split]
            splits[split] = LabeledTexts(
                texts, _label_ids(labels, names, label_names, trained, raw[split][1]), raw[split][1]
            )
    # Normalised and checked against the vocabulary before any split is held out: errors name the rows of the files.
    if config.normalize:
        splits = {split: _normalized(texts) for split, texts in splits.items()}
    vocabulary, reason = choose_texts_vocabulary(list(splits.values()), config)
    train = splits["train"]
    if "validation" not in splits:
        strata = [label[0] for label in train.labels] if multi_label else train.labels  # multi-label: by the first
        train_rows, validation_rows = stratified_split(strata, config.validation_split_percentage, config.seed)
        if not validation_rows:
            raise DataError(
                f"{train.source}: too few examples to hold {config.validation_split_percentage}% out for validation; "
                "give a --validation-file"
            )
        share = f"{config.validation_split_percentage:g}%"
        splits["validation"] = _subset(train, validation_rows, f"{train.source} (stratified {share} held out)")
        splits["train"] = _subset(train, train_rows, train.source)
    fingerprint = {split: f"{len(texts.texts)}:{_digest(texts)}" for split, texts in splits.items()}
    return LabeledData(
        splits["train"],
        splits["validation"],
        splits.get("test"),
        label_names,
        vocabulary,
        reason,
        description,
        fingerprint,
        multi_label,
    )


def labeled_file_for_model(
    path: str | Path,
    label_names: list[str],
    vocabulary: Vocabulary,
    text_column: str = "text",
    label_column: str = "label",
    normalize: bool = False,
    multi_label: bool = False,
    label_separator: str | None = None,
) -> LabeledTexts:
    """
    A labeled file to score a trained model on, read as training reads its files: its labels as the model's label
    ids (`label_names`, in id order), its texts normalised when asked and checked against the model's vocabulary.
    Errors name the file and the row. A `multi_label` model's labels are read as training reads them (lists, or cells
    cut at `label_separator`).
    """
    source = str(path)
    texts, labels, names = text_and_label_columns(read_labeled_file(path), source, text_column, label_column)
    if multi_label:
        labels = label_sets(labels, source, label_column, label_separator)
    if names is not None:  # a ClassLabel's ids are the file's own: its names are what match the model's
        to_name = lambda label: names[label] if label >= 0 else None  # noqa: E731
        labels = [[to_name(value) for value in label] if multi_label else to_name(label) for label in labels]
    split = LabeledTexts(texts, _label_ids(labels, None, label_names, None, source, "the model's labels"), source)
    if normalize:
        split = _normalized(split)
    for row, text in enumerate(split.texts):
        try:
            vocabulary.encode(text, source=f"{source}, row {row + 1}")
        except ValueError as error:  # a character the model cannot read (the message names it and where)
            raise DataError(str(error)) from None
    return split


def _normalized(split: LabeledTexts) -> LabeledTexts:
    texts = [normalize_text(text) for text in split.texts]
    for row, text in enumerate(texts):
        if not text.strip():
            raise DataError(f"{split.source}, row {row + 1}: no letters left after --normalize; remove the row")
    return LabeledTexts(texts, split.labels, split.source)


def _digest(split: LabeledTexts) -> str:
    return digest(
        f"{len(text)}:{text}{label}\n".encode("utf-8", "surrogatepass")
        for text, label in zip(split.texts, split.labels)
    )
