"""
The exercise's `Indexer` as a `transformers` tokenizer: one id per symbol. Three vocabularies (`Vocabulary`):

- `text8`: the 27 symbols of text8, `a`=0 ... `z`=25, space=26 (the exercise's ids; the default);
- `chars`: the distinct characters of a corpus, in code-point order, optionally with `<unk>` as the last id;
- `bytes`: the 256 UTF-8 byte values (any text, lossless; a "character" is then a byte).

The padding id is always the vocabulary's size (the models' embedding has one more row for it, never predicted).
This file is copied with every saved model (remote code): the vocabulary travels in the saved config and
tokenizer files, never in a constant of another module.
"""

import json
import os
import re
import unicodedata

import numpy as np
from transformers import PreTrainedTokenizer, TokenizersBackend

CHARACTERS = "abcdefghijklmnopqrstuvwxyz "  # the text8 vocabulary, in id order
CHAR_TO_ID = {char: index for index, char in enumerate(CHARACTERS)}

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}
VOCAB_KINDS = ("text8", "chars", "bytes")
UNK_TOKEN = "<unk>"
MAX_SYMBOLS = 256  # every kind fits a uint8 id (the corpus cache stores ids as bytes)


class UnknownCharacter(ValueError):
    """
    A character outside a vocabulary: its message names it and its position; `position` and `character` say it too.
    """

    def __init__(self, message: str, position: int, character: str):
        super().__init__(message)
        self.position = position
        self.character = character


class Vocabulary:
    """
    The symbols a model reads and predicts, and the vectorised encoding of text into their ids.

        Vocabulary()                                  # text8
        Vocabulary("chars", characters="\n !',.?ABC...", unk=True)
        Vocabulary("bytes")
    """

    def __init__(self, kind: str = "text8", characters: str | None = None, unk: bool = False):
        if kind not in VOCAB_KINDS:
            raise ValueError(f"unknown vocabulary {kind!r}: choose one of {', '.join(VOCAB_KINDS)}")
        self.kind = kind
        self.unk = bool(unk) and kind == "chars"
        if kind == "text8":
            self.symbols = list(CHARACTERS)
        elif kind == "chars":
            if not characters:
                raise ValueError("a chars vocabulary needs its characters")
            if len(set(characters)) != len(characters):
                raise ValueError("a chars vocabulary lists each character once")
            self.symbols = list(characters) + ([UNK_TOKEN] if self.unk else [])
        else:
            self.symbols = [chr(byte) for byte in range(256)]  # a byte's token: the Latin-1 character of its value
        if len(self.symbols) > MAX_SYMBOLS:
            raise ValueError(f"a vocabulary holds at most {MAX_SYMBOLS} symbols, not {len(self.symbols)}")
        self.size = len(self.symbols)
        self.unk_id = self.size - 1 if self.unk else None
        self.to_id = {symbol: index for index, symbol in enumerate(self.symbols)}
        # A code-point table for the vectorised encoding, up to the highest code point of the vocabulary (any plane:
        # emoji too); code points above it are outside the vocabulary.
        code_points = [ord(symbol) for symbol in self.symbols if len(symbol) == 1]
        self._table = np.full(1 + max(code_points, default=0), -1, dtype=np.int16)
        self._table[code_points] = [self.to_id[chr(point)] for point in code_points]

    @classmethod
    def from_config(cls, config) -> "Vocabulary":
        return cls(config.vocab_kind, config.characters, config.unk_token_id is not None)

    @property
    def characters(self) -> str | None:
        """A `chars` vocabulary's characters in id order (without `<unk>`); None for the other kinds."""
        return "".join(self.symbols[: self.size - (1 if self.unk else 0)]) if self.kind == "chars" else None

    def config_kwargs(self) -> dict:
        """What a model config records of this vocabulary."""
        return {
            "vocab_kind": self.kind,
            "vocab_size": self.size,
            "unk_token_id": self.unk_id,
            "characters": self.characters,
        }

    @property
    def unit(self) -> str:
        """What one symbol is: "byte" for `bytes`, else "character" (bits per byte vs bits per character)."""
        return "byte" if self.kind == "bytes" else "character"

    @property
    def start_id(self) -> int:
        """The context a text is scored after: a space where the vocabulary has one (text8 scores after " ")."""
        return self.to_id.get(" ", 0)

    def encode(self, text: str | bytes, source: str | None = None) -> np.ndarray:
        """
        Ids (int64) of `text` (a string, or UTF-8 bytes); a character outside the vocabulary raises `UnknownCharacter`
        naming it and its position (for bytes of text8 or ASCII text, the byte offset is the character position).
        """
        if self.kind == "bytes":
            raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
            return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
        if isinstance(text, bytes) and self.kind == "chars":
            text = text.decode("utf-8")
        if isinstance(text, bytes):  # text8: every symbol is one ASCII byte, so bytes are looked up as they are
            points = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
        else:
            points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        ids = np.where(points < len(self._table), self._table[np.minimum(points, len(self._table) - 1)], -1).astype(
            np.int64
        )
        unknown = np.flatnonzero(ids < 0)
        if unknown.size:
            if self.unk:
                ids[unknown] = self.unk_id
            else:
                position = int(unknown[0])
                character = (
                    text[position : position + 4].decode("utf-8", "replace")[:1]
                    if isinstance(text, bytes)
                    else text[position]
                )
                what = (
                    "the 27 text8 symbols (a-z and space)"
                    if self.kind == "text8"
                    else f"this model's {self.size} characters"
                )
                fix = (
                    "normalize the text first (hf_charnn.normalize_text)"
                    if self.kind == "text8"
                    else "remove it, or train with --unk (or --vocab bytes) to accept any character"
                )
                where = f"{source}: " if source else ""
                raise UnknownCharacter(
                    f"{where}character {character!r} at position {position} is not one of {what}; {fix}",
                    position,
                    character,
                )
        return ids

    def normalize(self, text: str) -> str:
        """
        `text` as this vocabulary reads real text: text8 maps it into text8 form (`normalize_text`); others keep it.
        """
        return normalize_text(text) if self.kind == "text8" else text

    def decode(self, ids) -> str:
        """The text of `ids` (padding and other ids outside the vocabulary are skipped; cut UTF-8 never raises)."""
        kept = [int(index) for index in ids if 0 <= int(index) < self.size]
        if self.kind == "bytes":
            return bytes(kept).decode("utf-8", errors="replace")
        return "".join(self.symbols[index] for index in kept)


DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT = re.compile(r"[0-9]")
_NON_LETTERS = re.compile(r"[^a-z]+")


def normalize_text(raw: str) -> str:
    """
    Turn any text into text8 form, as the corpus itself was made: accents stripped, lowercase, each digit
    spelled out (`"1984"` -> `" one nine eight four "`), and every other run of non-letters turned into one
    space. `normalize_text("In 1984, Orwell!") == "in one nine eight four orwell "`.
    """
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii").lower()
    text = _DIGIT.sub(lambda match: f" {DIGIT_NAMES[int(match.group())]} ", text)
    return _NON_LETTERS.sub(" ", text)


def _saved_vocabulary(vocab_file: str | None, vocab_kind: str, characters: str | None, unk: bool) -> Vocabulary:
    """The vocabulary a saved tokenizer names (its vocab.json, where it has one), else the one its arguments give."""
    if vocab_file is not None and os.path.isfile(vocab_file) and vocab_kind != "bytes":
        with open(vocab_file, encoding="utf-8") as handle:
            saved = json.load(handle)
        if vocab_kind == "text8" and saved != CHAR_TO_ID:
            raise ValueError(
                f"{vocab_file}: not the 27-character text8 vocabulary (a=0 ... z=25, space=26); "
                "re-save the tokenizer with `CharTokenizer().save_pretrained(...)`"
            )
        if vocab_kind == "chars":
            ordered = sorted(saved, key=saved.get)
            unk = ordered[-1:] == [UNK_TOKEN]
            characters = "".join(ordered[:-1] if unk else ordered)
    return Vocabulary(vocab_kind, characters, unk)


class _CharacterVocabularyTokenizer:
    """What both character tokenizers share: made from a model's config, saved as vocab.json (symbol -> id)."""

    vocabulary: Vocabulary

    @classmethod
    def for_model(cls, config):
        """The tokenizer of a model's vocabulary (as recorded in its config)."""
        vocabulary = Vocabulary.from_config(config)
        return cls(vocab_kind=vocabulary.kind, characters=vocabulary.characters, unk=vocabulary.unk)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.vocabulary.to_id, handle, ensure_ascii=False, indent=1)
        return (path,)


class CharTokenizer(_CharacterVocabularyTokenizer, PreTrainedTokenizer):
    """
    Character tokenizer: one id per symbol of its `Vocabulary` (`vocab_kind`: `text8`, the default, `chars` or
    `bytes`). With `text8`, ids follow the exercise's Indexer (`index_of("a") == 0`, `index_of(" ") == 26`). `<pad>` is
    appended as the id after the vocabulary (27 for text8) so that batches of different lengths can be padded (on the
    left by default, as `generate()` expects; the GRU models skip padding on either side).

    Encoding a character outside the vocabulary raises `ValueError` naming the character and its position (for
    text8, run real text through `hf_charnn.normalize_text` first), except for a `chars` vocabulary built with
    `<unk>`, which maps it there. `bytes` reads any text; decoding a cut multi-byte sequence never raises.

        CharTokenizer()                                         # text8
        CharTokenizer(vocab_kind="chars", characters="\n !,.?ABCabc", unk=True)
        CharTokenizer(vocab_kind="bytes")
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        vocab_kind: str = "text8",
        characters: str | None = None,
        unk: bool = False,
        pad_token: str = "<pad>",
        padding_side: str = "left",
        **kwargs,
    ):
        # The vocabulary is set before super().__init__, which appends the special tokens after it.
        self.vocabulary = _saved_vocabulary(vocab_file, vocab_kind, characters, unk)
        self.vocab = dict(self.vocabulary.to_id)
        self.ids_to_chars = dict(enumerate(self.vocabulary.symbols))
        # The beginning of a text is the start symbol the models score texts after (a space for text8), declared as
        # bos_token so that clients which prefix a text with BOS (lm-eval's rolling loglikelihood) need no settings.
        # It is never added by encoding, is one of the vocabulary's own symbols (no new id, no new embedding row), and
        # decoding keeps it (see `_decode`).
        kwargs.setdefault("bos_token", self.vocabulary.symbols[self.vocabulary.start_id])
        super().__init__(pad_token=pad_token, padding_side=padding_side, vocab_kind=vocab_kind, **kwargs)

    # -- the exercise's Indexer interface -------------------------------------------------------------------
    def index_of(self, char: str) -> int:
        """Id of one symbol (`-1` when it is not in the vocabulary, as the exercise's Indexer answers)."""
        return self.vocab.get(char, -1)

    def get_object(self, index: int) -> str | None:
        """The symbol with this id, or None."""
        return self.ids_to_chars.get(index)

    # -- PreTrainedTokenizer hooks ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self.added_tokens_encoder}

    def tokenize(self, text: str, **kwargs) -> list[str]:
        try:
            return super().tokenize(text, **kwargs)
        except ValueError:
            # transformers cuts the text at special tokens (the bos symbol is a space) before `_tokenize` sees a piece,
            # so the piece's error would give the position within the piece: name it in the whole text instead.
            self.vocabulary.encode(text)
            raise

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        # The vocabulary's own encoding: its errors name the character and its position; <unk> where it has one.
        return [self.vocabulary.symbols[index] for index in self.vocabulary.encode(text).tolist()]

    def _convert_token_to_id(self, token: str) -> int:
        if token in self.vocab:
            return self.vocab[token]
        if token in self.added_tokens_encoder:
            return self.added_tokens_encoder[token]
        if self.vocabulary.unk:
            return self.vocabulary.unk_id
        raise ValueError(f"token {token!r} is not in the character vocabulary")

    def _convert_id_to_token(self, index: int) -> str:
        if index in self.ids_to_chars:
            return self.ids_to_chars[index]
        if index in self.added_tokens_decoder:
            return str(self.added_tokens_decoder[index])
        raise ValueError(
            f"id {index} is not in the character vocabulary (0-{self.vocabulary.size - 1}, or {self.vocabulary.size} "
            "for padding)"
        )

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs) -> str:
        # skip_special_tokens drops padding (and tokens added after the vocabulary), never a symbol of the vocabulary:
        # the bos symbol is a real character (a space), and a generated text keeps its spaces.
        ids = [int(token_ids)] if isinstance(token_ids, int) else [int(index) for index in token_ids]
        if skip_special_tokens:
            return self.vocabulary.decode(ids)
        return self.convert_tokens_to_string([self._convert_id_to_token(index) for index in ids])

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        if self.vocabulary.kind == "bytes":
            # Bytes back to text; a multi-byte character cut off (mid-generation) becomes U+FFFD, never an error.
            return bytes(ord(token) for token in tokens if len(token) == 1).decode("utf-8", errors="replace")
        return "".join(tokens)


class CharTokenizersBackend(_CharacterVocabularyTokenizer, TokenizersBackend):
    """
    The character tokenizer on the `tokenizers` library (Rust): `CharTokenizer`'s ids, padding, start symbol and
    errors (a character outside the vocabulary raises the same `UnknownCharacter`), plus what only a fast tokenizer
    gives: offsets and word ids, a word being a run of non-whitespace characters. transformers' token-classification
    pipeline needs them for its `first`, `average` and `max` aggregation, so a tagger's folder saves this one.
    text8 and chars vocabularies (a bytes model's tokens are bytes, not characters: it keeps `CharTokenizer`).

        CharTokenizersBackend()                                    # text8
        CharTokenizersBackend(vocab_kind="chars", characters="\n !,.?ABCabc", unk=True)
    """

    vocab_files_names = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = CharTokenizer

    def __init__(
        self,
        vocab_file: str | None = None,
        vocab_kind: str = "text8",
        characters: str | None = None,
        unk: bool = False,
        pad_token: str = "<pad>",
        padding_side: str = "left",
        **kwargs,
    ):
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

        if vocab_kind == "bytes":
            raise ValueError("a bytes vocabulary reads bytes, not characters: use CharTokenizer for it")
        self.vocabulary = _saved_vocabulary(vocab_file, vocab_kind, characters, unk)
        # The backend is rebuilt from the vocabulary (a saved tokenizer.json is ignored: the vocabulary is the truth).
        # BPE with no merges reads each character of a word as its own token; the pre-tokenizer makes every
        # whitespace character a word of its own, so word ids group runs of the other characters.
        kwargs.pop("tokenizer_file", None)
        kwargs.pop("tokenizer_object", None)
        backend = Tokenizer(
            models.BPE(
                vocab=dict(self.vocabulary.to_id), merges=[], unk_token=UNK_TOKEN if self.vocabulary.unk else None
            )
        )
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s"), behavior="isolated")
        backend.decoder = decoders.Fuse()
        kwargs.setdefault("bos_token", self.vocabulary.symbols[self.vocabulary.start_id])
        super().__init__(
            tokenizer_object=backend,
            pad_token=pad_token,
            padding_side=padding_side,
            vocab_kind=vocab_kind,
            characters=self.vocabulary.characters,
            unk=self.vocabulary.unk,
            **kwargs,
        )

    def _encode_plus(self, text, text_pair=None, **kwargs):
        # The vocabulary's own encoding checks every text first: the backend would drop an unknown character silently,
        # where CharTokenizer names it and its position.
        for piece in (text, text_pair):
            for one in _texts_of(piece, kwargs.get("is_split_into_words", False)):
                self.vocabulary.encode(one)
        return super()._encode_plus(text, text_pair, **kwargs)

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs) -> str:
        # As CharTokenizer decodes: the start symbol (a space) is a character of the text, never dropped.
        ids = [int(token_ids)] if isinstance(token_ids, int) else [int(index) for index in token_ids]
        if skip_special_tokens:
            return self.vocabulary.decode(ids)
        return "".join(
            self.vocabulary.symbols[index] if 0 <= index < self.vocabulary.size else self.convert_ids_to_tokens(index)
            for index in ids
        )

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        # vocab.json beside tokenizer.json, as every hf_charnn folder has it (the slow tokenizer and our tools read it).
        saved = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        return saved + self.save_vocabulary(str(save_directory), filename_prefix)


def _texts_of(value, split_into_words: bool) -> list[str]:
    """The texts of a tokenizer input: a string or a batch of them; split into words, each row's words run together."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if split_into_words:
        rows = [value] if value and isinstance(value[0], str) else value
        return ["".join(row) for row in rows]
    return list(value)
