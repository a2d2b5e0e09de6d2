"""The exercise's `Indexer` as a `transformers` tokenizer: one id per character, `a`=0 ... `z`=25, space=26."""

import json
import os
import re
import unicodedata

from transformers import PreTrainedTokenizer

CHARACTERS = "abcdefghijklmnopqrstuvwxyz "
VOWELS = "aeiou"
CHAR_TO_ID = {char: index for index, char in enumerate(CHARACTERS)}
SPACE_ID = CHAR_TO_ID[" "]
VOWEL_IDS = [CHAR_TO_ID[vowel] for vowel in VOWELS]
CONSONANT_IDS = [index for char, index in CHAR_TO_ID.items() if char not in VOWELS and char != " "]

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}

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


class CharTokenizer(PreTrainedTokenizer):
    """
    Character tokenizer over the 27 text8 symbols. Ids follow the exercise's Indexer (`index_of("a") == 0`,
    `index_of(" ") == 26`); `<pad>` is appended as id 27 so that batches of different lengths can be padded
    (on the left by default, as `generate()` expects; the GRU models skip padding on either side).

    Encoding a character outside the 27 raises `ValueError` naming the character and its position: run the
    text through `hf_charnn.normalize_text` first to map real text into this alphabet.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str | None = None, pad_token: str = "<pad>", padding_side: str = "left", **kwargs):
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                saved = json.load(handle)
            if saved != CHAR_TO_ID:
                raise ValueError(
                    f"{vocab_file}: not the 27-character text8 vocabulary (a=0 ... z=25, space=26); "
                    "re-save the tokenizer with `CharTokenizer().save_pretrained(...)`"
                )
        # The vocabulary is set before super().__init__, which appends the special tokens after it.
        self.vocab = dict(CHAR_TO_ID)
        self.ids_to_chars = dict(enumerate(CHARACTERS))
        super().__init__(pad_token=pad_token, padding_side=padding_side, **kwargs)

    # -- the exercise's Indexer interface -------------------------------------------------------------------
    def index_of(self, char: str) -> int:
        """Id of one character (`-1` when it is not one of the 27, as the exercise's Indexer answers)."""
        return self.vocab.get(char, -1)

    def get_object(self, index: int) -> str | None:
        """The character with this id, or None."""
        return self.ids_to_chars.get(index)

    # -- PreTrainedTokenizer hooks ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self.added_tokens_encoder}

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        for position, char in enumerate(text):
            if char not in self.vocab:
                raise ValueError(
                    f"character {char!r} at position {position} is not one of the 27 text8 symbols (a-z and space); "
                    "normalize the text first (hf_charnn.normalize_text)"
                )
        return list(text)

    def _convert_token_to_id(self, token: str) -> int:
        if token in self.vocab:
            return self.vocab[token]
        if token in self.added_tokens_encoder:
            return self.added_tokens_encoder[token]
        raise ValueError(f"token {token!r} is not in the character vocabulary")

    def _convert_id_to_token(self, index: int) -> str:
        if index in self.ids_to_chars:
            return self.ids_to_chars[index]
        if index in self.added_tokens_decoder:
            return str(self.added_tokens_decoder[index])
        raise ValueError(f"id {index} is not in the character vocabulary (0-26, or 27 for padding)")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.vocab, handle, ensure_ascii=False, indent=1)
        return (path,)
