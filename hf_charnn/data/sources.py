"""
Where characters come from: files (plain, gzip, zip) read block by block, `datasets` datasets, and the whole text8;
each checked and encoded into ids (text8 ids, a source's own characters, or bytes) on its way into the cache.
"""

import codecs
import gzip
import itertools
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..models.tokenization_char_gru import CHARACTERS, MAX_SYMBOLS, UnknownCharacter, Vocabulary, normalize_text
from .cache import READ_BLOCK, cached_ids, file_digest

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
# A source with more distinct characters cannot be cached as uint8 character ids: the vocabulary's limit (one home).
MAX_CHARS = MAX_SYMBOLS
_TEXT8 = Vocabulary()


class NotText8(DataError):
    """Text with a character outside the 27 text8 symbols (`--vocab auto` then reads it in another vocabulary)."""


class TooManyCharacters(DataError):
    """A `chars` encoding met more distinct characters than a uint8 id holds."""

    def __init__(self, source: str, found: int):
        super().__init__(
            f"{source}: more than {MAX_CHARS - 1} distinct characters (found {found} so far); "
            "train with --vocab bytes, or --normalize into text8 form"
        )


def encode_text(text: str | bytes, source: str = "text", block_start: int | None = None) -> np.ndarray:
    """
    Text8-form text (a string, or UTF-8 bytes) as uint8 ids (a=0 ... z=25, space=26), through the text8 `Vocabulary`.
    A character outside the 27 raises `NotText8` naming `source`, its position (in the whole text when `block_start`,
    the position of this block, is given), its line, and how many such characters there are.
    """
    try:
        return _TEXT8.encode(text).astype(np.uint8)
    except UnknownCharacter as error:
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        offset = error.position if isinstance(text, bytes) else len(text[: error.position].encode("utf-8"))
        raw_bytes = np.frombuffer(raw, dtype=np.uint8)
        is_text8 = np.isin(raw_bytes, np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype=np.uint8))
        bad_chars = int(np.count_nonzero(~is_text8 & ((raw_bytes & 0xC0) != 0x80)))  # continuation bytes are not chars
        count = f"{bad_chars} such characters in all" if block_start is None else f"{bad_chars} in this block of it"
        line = raw.count(b"\n", 0, offset) + 1
        raise NotText8(
            f"{source}: character {error.character!r} at position {(block_start or 0) + error.position} (line {line}) "
            f"is not one of the 27 text8 symbols (a-z and space); {count}. "
            "Fix the file, or pass --normalize to map it into text8 form"
        ) from None


def read_text_file(path: str | os.PathLike, normalize: bool = False, as_is: bool = False) -> str:
    """
    The text of a text8-form file. Missing, empty or non-text8 files raise `DataError` naming the file and the
    first bad position; with `normalize=True` the text is mapped into text8 form instead, and how much changed is
    reported on stderr. `as_is=True`: any UTF-8 text, as it is.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path, --data-dir or $HF_CHARNN_DATA)")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); convert it to UTF-8") from None
    if not raw:
        raise DataError(f"{path}: file is empty")
    if as_is:
        return raw
    if normalize:
        text = normalize_text(raw)
        if text != raw:
            mapped = sum(char not in CHARACTERS for char in raw)
            print(
                f"{path}: normalized into text8 form ({mapped} of {len(raw)} characters were not text8 symbols)",
                flush=True,
            )
        if not text.strip():
            raise DataError(f"{path}: no letters left after normalizing")
        return text
    encode_text(raw, source=str(path))  # raises on the first character outside the 27
    return raw


# -- reading sources block by block ----------------------------------------------------------------------------------
def _file_blocks(path: Path):
    """(bytes blocks of the file's text, total bytes or None): plain, gzip, or the single text file of a zip."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the path)")
    with path.open("rb") as handle:
        magic = handle.read(4)  # by content, not name: the datasets download cache names files by hash
    if magic[:2] == b"\x1f\x8b":
        return _read_blocks(lambda: gzip.open(path, "rb"), str(path)), None
    if magic == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise DataError(f"{path}: not a readable zip archive; download it again") from None
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise DataError(f"{path}: the zip holds {len(members)} files; give a zip with exactly one text file")
        return _read_blocks(lambda: archive.open(members[0]), str(path)), members[0].file_size
    return _read_blocks(lambda: path.open("rb"), str(path)), path.stat().st_size


def _read_blocks(opener, name: str):
    try:
        with opener() as handle:
            while block := handle.read(READ_BLOCK):
                yield block
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{name}: cannot be read to the end ({error}); the file may be truncated") from None


def encode_blocks(
    blocks, source: str, normalize: bool, write, encoding: str = "text8", info: dict | None = None
) -> int:
    """
    Check (or normalize) and encode a stream of byte blocks, passing each block's ids to `write`; returns the count.
    `encoding`: text8 ids; `chars`, ids of the source's own characters in the order met (their list goes into
    `info["characters"]`; the run's vocabulary maps them to its ids later); `bytes`, the bytes themselves. Errors name
    the source and the position in the whole stream.
    """
    position = 0
    if encoding == "bytes":
        for block in blocks:
            write(np.frombuffer(block, dtype=np.uint8))
            position += len(block)
        return position
    if encoding == "chars":
        return _encode_chars(blocks, source, write, info if info is not None else {})
    if not normalize:
        for block in blocks:
            ids = encode_text(block, source, block_start=position)
            write(ids)
            position += len(ids)
        return position
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    for block in itertools.chain(blocks, [None]):  # block by block: memory does not grow with the corpus
        text = carry + (decoder.decode(block) if block is not None else decoder.decode(b"", final=True))
        if block is not None:
            # Cut after the last ASCII letter: a run of non-letters (or digits) split between blocks would
            # otherwise be normalized twice; the rest goes with the next block.
            cut = _last_letter(text)
            text, carry = text[: cut + 1], text[cut + 1 :]
        ids = encode_text(normalize_text(text), source=source)
        write(ids)
        position += len(ids)
    return position


def _encode_chars(blocks, source: str, write, info: dict) -> int:
    """The `chars` encoding: strict UTF-8, one pass, the characters found as they come (at most MAX_CHARS)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    table = np.full(0x110000, -1, dtype=np.int16)  # code point -> local id
    characters: list[str] = []
    position = byte_offset = 0
    for block in itertools.chain(blocks, [None]):
        try:
            text = decoder.decode(block, final=False) if block is not None else decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            pending = len(decoder.getstate()[0]) if block is None else 0
            offset = byte_offset + error.start - pending
            raise DataError(
                f"{source}: not valid UTF-8 (byte {offset}: {error.reason}); convert the file to UTF-8, or train with "
                "--vocab bytes, which reads any bytes"
            ) from None
        if block is not None:
            byte_offset += len(block)
        new = sorted(set(text).difference(characters))
        if new:
            if len(characters) + len(new) > MAX_CHARS:
                raise TooManyCharacters(source, len(characters) + len(new))
            for char in new:
                table[ord(char)] = len(characters)
                characters.append(char)
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        write(table[points].astype(np.uint8))
        position += len(points)
    info["characters"] = "".join(characters)
    return position


def _last_letter(text: str) -> int:
    for index in range(len(text) - 1, -1, -1):
        if "a" <= text[index].lower() <= "z" and text[index].isascii():
            return index
    return -1


def file_ids(
    path: str | os.PathLike, normalize: bool = False, encoding: str = "text8", progress_bar: bool = True
) -> np.ndarray:
    """
    A text file (`.txt`, `.gz`, `.zip`) as cached ids (text8 ids, the file's own characters, or its bytes); encoded
    once, with a progress bar on a terminal unless `progress_bar` is False.
    """
    path = Path(path)
    blocks, total = _file_blocks(path)
    blocks.close()  # opened again below, lazily, only if the cache has to be built
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return cached_ids(
        {"kind": "file", "size": path.stat().st_size, "blake2b": file_digest(path)},
        str(path),
        lambda write, info: encode_blocks(_file_blocks(path)[0], str(path), normalize, write, encoding, info),
        normalize,
        total,
        encoding,
        progress_bar,
    )


def load_text8(source: str = TEXT8_URL, streaming: bool = True):
    """
    The full text8 corpus through `datasets` (one row: the whole text): `source` is the 100M-character file, its
    zip, or the download URL (the default, which needs the internet).
    """
    if "://" not in source and not Path(source).is_file():
        raise DataError(f"{source}: file not found; give the text8 file, text8.zip, or its URL")
    from datasets import load_dataset

    data_files = {"train": f"zip://text8::{source}" if source.endswith(".zip") else source}
    return load_dataset("text", data_files=data_files, sample_by="document", streaming=streaming, split="train")


def text8_ids(source: str = TEXT8_URL, progress_bar: bool = True) -> np.ndarray:
    """
    The whole text8 as cached ids (encoded once, with a progress bar on a terminal unless `progress_bar` is False).
    `source` is its URL (fetched once into the `datasets` download cache, which honours HF_DATASETS_OFFLINE /
    HF_HUB_OFFLINE), a local `text8.zip`, or the unzipped file.
    """
    if "://" in source:
        from datasets import DownloadConfig, DownloadManager

        try:
            path = DownloadManager(download_config=DownloadConfig()).download(source)
        except (OSError, ValueError) as error:  # requests / fsspec / offline-mode errors (OSErrors): "not fetched"
            raise UserError(
                f"cannot fetch text8 from {source} ({error.__class__.__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); "
                "check the network, or download text8.zip yourself and pass --text8-source text8.zip"
            ) from None
        source = path
    return file_ids(source, progress_bar=progress_bar)


def load_dataset_splits(config) -> tuple[dict, dict]:
    """
    `config.dataset_name` (and `dataset_config`) through `datasets.load_dataset`, and which of its splits train,
    validate and test: {"train": "train", "validation": "validation" | "valid" | "dev" | None, "test": "test" | None}.
    """
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError

    name = config.dataset_name
    try:
        splits = load_dataset(name, config.dataset_config)
    except (OSError, ValueError, DatasetsError) as error:  # not found, offline, unreachable, a bad builder: one line
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise UserError(
            f"dataset {name!r} could not be loaded ({error.__class__.__name__}: {first_line[:300]}); check the name "
            "(a Hub id or a local folder), the network, or HF_HUB_OFFLINE"
        ) from None
    if "train" not in splits:
        raise UserError(f"dataset {name!r} has no train split (it has {', '.join(splits)})")
    chosen = {
        "train": "train",
        "validation": next((split for split in ("validation", "valid", "dev") if split in splits), None),
        "test": "test" if "test" in splits else None,
    }
    return splits, chosen


def dataset_splits_as_ids(config):
    """A function of the encoding that returns a `datasets` dataset's splits as cached ids (see load_corpus)."""
    name = config.dataset_name
    splits, chosen = load_dataset_splits(config)
    if config.text_column not in splits["train"].column_names:
        raise UserError(
            f"dataset {name!r} has no column {config.text_column!r} (columns: "
            f"{', '.join(splits['train'].column_names)}); "
            "pass --text-column"
        )

    def split_ids(split: str, encoding: str) -> np.ndarray:
        dataset = splits[split]
        source = f"dataset {name} ({split} split)"

        def blocks():
            # Rows are joined by a space (a line break is a word break in text8 form).
            for start in range(0, dataset.num_rows, 1000):
                rows = dataset[start : start + 1000][config.text_column]
                yield (" ".join(rows) + (" " if start + 1000 < dataset.num_rows else "")).encode("utf-8")

        fingerprint = {
            "kind": "dataset",
            "name": name,
            "config": config.dataset_config,
            "split": split,
            "column": config.text_column,
            "fingerprint": dataset._fingerprint,
        }
        return cached_ids(
            fingerprint,
            source,
            lambda write, info: encode_blocks(blocks(), source, config.normalize, write, encoding, info),
            config.normalize,
            encoding=encoding,
            progress_bar=config.progress_bar,
        )

    def encode_splits(encoding: str) -> dict:
        return {
            split: split_ids(chosen[split], encoding) if chosen[split] else None
            for split in ("train", "validation", "test")
        }

    return encode_splits
