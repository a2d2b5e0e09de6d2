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


def encode_text(text: str, source: str = "text") -> np.ndarray:
    """
    Encode text8-form text into a uint8 array of character ids (a=0 ... z=25, space=26), vectorised.

    Raises `DataError` naming `source`, the position and the offending character if any character is not one
    of the 27 symbols.
    """
    raw = text.encode("utf-8")
    raw_bytes = np.frombuffer(raw, dtype=np.uint8)
    ids = _BYTE_TO_ID[raw_bytes]
    bad = np.flatnonzero(ids == 255)
    if bad.size:
        byte_offset = int(bad[0])
        position = len(raw[:byte_offset].decode("utf-8", "ignore"))
        char = text[position] if position < len(text) else "?"
        bad_chars = int(np.count_nonzero((raw_bytes[bad] & 0xC0) != 0x80))  # UTF-8 continuation bytes are not chars
        raise DataError(
            f"{source}: character {char!r} at position {position} (line {text.count(chr(10), 0, position) + 1}) "
            f"is not one of the 27 text8 symbols (a-z and space); {bad_chars} such characters in all. "
            "Fix the file, or pass --normalize to map it into text8 form"
        )
    return ids


def decode_ids(ids) -> str:
    """Inverse of `encode_text` for ids 0-26."""
    return _ID_TO_BYTE[np.asarray(ids, dtype=np.int64)].tobytes().decode("ascii")
