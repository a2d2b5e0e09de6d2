"""
The vocabulary of a run's texts (`--vocab auto|text8|chars|bytes`), decided in one place for LM corpora and labeled
texts alike:
- `text8` when asked for, with `--normalize`, or (auto) when every character is one of the 27 text8 symbols;
- `chars`, the distinct characters of all the run's texts (training, validation and test, as nanoGPT's
  shakespeare_char and char-rnn build theirs), when asked for or (auto) when there are at most 255;
- `bytes` when asked for, or (auto) when there are more.
"""

import numpy as np

from ..errors import DataError
from ..models.tokenization_char_gru import CHARACTERS, Vocabulary
from ..training.starting_model import id_position, starting_model, starting_vocabulary, text_position
from .cache import remapped_ids
from .sources import MAX_CHARS, NotText8, TooManyCharacters


def decide_vocabulary(config, source: str, characters: set[str] | None, text8_form: bool) -> tuple[Vocabulary, str]:
    """
    (the vocabulary, why) of texts holding the distinct `characters` (None: more than a uint8 id holds) that are
    (`text8_form`) or are not all text8 symbols, as `config.vocab`, `config.normalize` and `config.unk` ask.
    """
    if config.normalize:
        return Vocabulary(), "text8: --normalize"
    if config.vocab == "text8":
        return Vocabulary(), "text8: asked for"
    if config.vocab == "bytes":
        return Vocabulary("bytes"), "bytes: asked for"
    if config.vocab == "auto" and text8_form:
        return Vocabulary(), "text8: auto (every character of the corpus is a text8 symbol)"
    if characters is None or len(characters) > MAX_CHARS - 1:
        if config.vocab == "chars":
            count = f"{len(characters)}" if characters is not None else f"more than {MAX_CHARS - 1}"
            raise DataError(
                f"{source}: {count} distinct characters, more than {MAX_CHARS - 1}; train with --vocab bytes"
            )
        return Vocabulary("bytes"), f"bytes: auto (more than {MAX_CHARS - 1} distinct characters)"
    how = "asked for" if config.vocab == "chars" else "auto"
    return Vocabulary("chars", "".join(sorted(characters)), config.unk), (
        f"chars: {how} ({len(characters)} distinct characters in the training, validation and test texts)"
    )


def choose_corpus_vocabulary(config, encode_splits) -> tuple[dict, Vocabulary, str]:
    """
    (each split's cached ids in the run's vocabulary, the vocabulary, why) of an LM corpus; `encode_splits(encoding)`
    encodes every split in "text8", "chars" (the source's own characters, in the order met) or "bytes".
    """
    source = config.train_file or config.dataset_name
    start = starting_model(config)
    if start is not None:
        return _starting_corpus_vocabulary(config, start, encode_splits, source)
    if config.normalize or config.vocab == "text8":
        return encode_splits("text8"), *decide_vocabulary(config, source, None, True)
    if config.vocab == "auto":
        # text8 first: a text8-form corpus (most of them, at text8 scale) is cached in one pass; any other text stops
        # this at its first character outside the 27, usually in the first block.
        try:
            return encode_splits("text8"), *decide_vocabulary(config, source, None, True)
        except NotText8:
            pass
    local = None
    if config.vocab != "bytes":
        try:
            local = encode_splits("chars")
        except TooManyCharacters:
            if config.vocab == "chars":
                raise
    found = set("".join(ids.characters for ids in local.values() if ids is not None)) if local else None
    vocabulary, reason = decide_vocabulary(config, source, found, False)
    if vocabulary.kind == "bytes":
        return encode_splits("bytes"), vocabulary, reason
    return _remapped(local, vocabulary), vocabulary, reason


def _remapped(local: dict, vocabulary: Vocabulary) -> dict:
    """Each split's local `chars` ids (its characters in the order met) as ids of `vocabulary` (<unk> if not in it)."""
    splits = {}
    for split, ids in local.items():
        if ids is None:
            splits[split] = None
            continue
        table = np.zeros(256, dtype=np.uint8)
        table[: len(ids.characters)] = [vocabulary.to_id.get(char, vocabulary.unk_id) for char in ids.characters]
        splits[split] = remapped_ids(ids, table, f"{split} ids in the {vocabulary.kind} vocabulary")
    return splits


def _starting_corpus_vocabulary(config, start, encode_splits, source: str) -> tuple[dict, Vocabulary, str]:
    """An LM corpus read in the vocabulary of the model the run starts from (`training/starting_model.py`)."""
    kind = start.vocabulary.kind
    if kind == "bytes":
        return encode_splits("bytes"), *starting_vocabulary(start, set(), None, config)
    if kind == "text8" and (config.normalize or not (config.extend_vocab or config.unk)):
        try:
            return encode_splits("text8"), *starting_vocabulary(start, set(), None, config)
        except NotText8 as error:
            raise DataError(
                f"{error}; {start.source} reads text8: pass --extend-vocab to add rows for the other characters, "
                "--unk to read them as <unk>, or --normalize"
            ) from None
    local = encode_splits("chars")
    found = set("".join(ids.characters for ids in local.values() if ids is not None))
    vocabulary, reason = starting_vocabulary(start, found, id_position(local, source), config)
    return _remapped(local, vocabulary), vocabulary, reason


def choose_texts_vocabulary(splits: list, config) -> tuple[Vocabulary, str]:
    """The vocabulary of labeled texts (`labeled.LabeledTexts` splits); with `--vocab text8`, errors name the row."""
    found = set().union(*(set(text) for split in splits for text in split.texts))
    start = starting_model(config)
    if start is not None:
        return starting_vocabulary(start, found, text_position(splits), config)
    text8_form = found <= set(CHARACTERS)
    if config.vocab == "text8" and not config.normalize and not text8_form:
        text8 = Vocabulary()
        for split in splits:
            for row, text in enumerate(split.texts):
                try:
                    text8.encode(text, source=f"{split.source}, row {row + 1}")
                except ValueError as error:
                    raise DataError(f"{error}; or train with --vocab auto") from None
    vocabulary, reason = decide_vocabulary(config, splits[0].source, found, text8_form)
    return vocabulary, reason.replace("of the corpus ", "") if vocabulary.kind == "text8" else reason
