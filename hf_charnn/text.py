"""Text in text8 form: normalising real text into the 27 symbols, and encoding it in bulk."""

import numpy as np

from .errors import DataError
from .tokenization_char_gru import CHARACTERS, normalize_text  # noqa: F401  (re-exported)

# Byte -> character id, 255 for bytes outside the alphabet: encoding is one numpy gather, not a Python
# loop, so the 100M characters of the full text8 encode in about a second.
_BYTE_TO_ID = np.full(256, 255, dtype=np.uint8)
for _index, _char in enumerate(CHARACTERS):
    _BYTE_TO_ID[ord(_char)] = _index
_ID_TO_BYTE = np.frombuffer(CHARACTERS.encode("ascii"), dtype=np.uint8)


class NotText8(DataError):
    """Text with a character outside the 27 text8 symbols (`--vocab auto` then reads it in another vocabulary)."""


def encode_text(text: str, source: str = "text") -> np.ndarray:
    """
    Encode text8-form text into a uint8 array of character ids (a=0 ... z=25, space=26), vectorised.

    Raises `DataError` naming `source`, the position and the offending character if any character is not one
    of the 27 symbols.
    """
    return encode_bytes(text.encode("utf-8"), source)


def encode_bytes(raw: bytes, source: str = "text", block_start: int | None = None) -> np.ndarray:
    """
    `encode_text` for UTF-8 bytes: the whole text, or (with `block_start`, its character position) one block of a
    longer one read block by block, whose errors then give the position in the whole text.
    """
    raw_bytes = np.frombuffer(raw, dtype=np.uint8)
    ids = _BYTE_TO_ID[raw_bytes]
    bad = np.flatnonzero(ids == 255)
    if bad.size:
        # Every byte before the first bad one is ASCII (one byte, one character), so its offset is its position.
        offset = int(bad[0])
        char = raw[offset : offset + 4].decode("utf-8", "replace")[:1]
        bad_chars = int(np.count_nonzero((raw_bytes[bad] & 0xC0) != 0x80))  # UTF-8 continuation bytes are not chars
        count = f"{bad_chars} such characters in all" if block_start is None else f"{bad_chars} in this block of it"
        line = raw.count(b"\n", 0, offset) + 1
        raise NotText8(
            f"{source}: character {char!r} at position {(block_start or 0) + offset} (line {line}) "
            f"is not one of the 27 text8 symbols (a-z and space); {count}. "
            "Fix the file, or pass --normalize to map it into text8 form"
        )
    return ids


def decode_ids(ids) -> str:
    """Inverse of `encode_text` for ids 0-26."""
    return _ID_TO_BYTE[np.asarray(ids, dtype=np.int64)].tobytes().decode("ascii")
