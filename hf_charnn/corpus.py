"""
LM corpora: where the characters come from, and how training reads them.

Sources (one per run, in the style of transformers' `run_clm`):
- the exercise files (the default): `text8-100k.txt` to train, `text8-dev.txt` to validate;
- plain-text files (`--train-file`, `--validation-file`, `--test-file`; `.txt`, `.gz` or `.zip`);
- a `datasets` dataset (`--dataset-name`, a Hub id or a local folder / builder; its `train`, `validation`, `test`);
- the whole text8 (`--corpus text8`): fetched once into the `datasets` download cache, split 90M / 5M / 5M.

A corpus is encoded once, block by block, into a uint8 array of character ids cached on disk (keyed by the source's
fingerprint) and read back through a memory map, as nanoGPT does with its token files: a second run starts in a
second, and the 100M characters of text8 never exist as a Python string or an int64 copy. `LMWindows` cuts the
training windows out of that array on the fly.
"""

import codecs
import dataclasses
import gzip
import hashlib
import itertools
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import load_lm_texts
from .errors import DataError, UserError
from .run_files import cache_home
from .text import NotText8, encode_bytes, encode_text, normalize_text
from .tokenization_char_gru import Vocabulary

CACHE_ENV = "HF_CHARNN_CACHE"
CACHE_FORMAT = 1  # bump when the cache layout or the encoding changes
READ_BLOCK = 8 << 20  # bytes read, checked and encoded at a time
TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_SPLIT = (0.90, 0.05)  # train, validation; the rest is test: 90M / 5M / 5M of text8's 100M characters


@dataclasses.dataclass
class Corpus:
    """Character ids (uint8; memory-mapped for cached corpora) of each split, and where they came from."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray | None = None
    description: str = "exercise data"
    fingerprint: dict = dataclasses.field(default_factory=dict)  # {split: what it holds}, for checked resumes
    vocabulary: Vocabulary = dataclasses.field(default_factory=Vocabulary)  # what the ids are ids of
    vocabulary_reason: str = "text8"

    def __post_init__(self):
        splits = {"train": self.train, "validation": self.validation, "test": self.test}
        for split, ids in splits.items():
            if ids is not None and split not in self.fingerprint:
                self.fingerprint[split] = content_id(ids)


def content_id(ids: np.ndarray) -> str:
    """
    "length:checksum" of an id array. A cached corpus is named by its cache key (itself a checksum of the source's
    content), so a 100M-character corpus is not read again; other arrays are hashed block by block (no copy).
    """
    key = getattr(ids, "cache_key", None)
    if key is not None:
        return f"{len(ids)}:{key}"
    digest = hashlib.blake2b(digest_size=12)
    for start in range(0, len(ids), READ_BLOCK):
        digest.update(np.ascontiguousarray(ids[start : start + READ_BLOCK]).data)
    return f"{len(ids)}:{digest.hexdigest()}"


def cache_dir() -> Path:
    """$HF_CHARNN_CACHE, else hf_charnn/ under the Hugging Face cache ($HF_HOME, default ~/.cache/huggingface)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return cache_home() / "corpora"


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


MAX_CHARS = 256  # a source with more distinct characters cannot be cached as uint8 character ids


class TooManyCharacters(DataError):
    """A `chars` encoding met more distinct characters than a uint8 id holds."""

    def __init__(self, source: str, found: int):
        super().__init__(
            f"{source}: more than {MAX_CHARS - 1} distinct characters (found {found} so far); "
            "train with --vocab bytes, or --normalize into text8 form"
        )


def _encode_blocks(blocks, source: str, normalize: bool, write, encoding: str = "text8", info: dict | None = None) -> int:
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
            ids = encode_bytes(block, source, block_start=position)
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


# -- the cache -------------------------------------------------------------------------------------------------------
def _file_fingerprint(path: Path) -> dict:
    """What a file holds: its size and a checksum of its bytes (an edit that keeps size and time still changes it)."""
    return {"size": path.stat().st_size, "blake2b": _digest(path)}


def _digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def cached_ids(
    fingerprint: dict, source: str, blocks_factory, normalize: bool, total_bytes: int | None = None, encoding: str = "text8"
) -> np.ndarray:
    """
    The encoded corpus for `fingerprint`, memory-mapped from the cache; built (with a progress bar) when missing,
    truncated, or written for another source. The array is written to a temporary file and renamed into place only
    when complete, so a run that dies or hits a full disk while caching never leaves a cache that is reused.
    """
    key_material = {"format": CACHE_FORMAT, "normalize": normalize, **fingerprint}
    if encoding != "text8":  # (text8 caches keep the keys they had)
        key_material["encoding"] = encoding
    key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:24]
    folder = cache_dir()
    data_file, meta_file = folder / f"{key}.bin", folder / f"{key}.json"
    if meta_file.is_file() and data_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError:
            meta = {}
        if (
            meta.get("key_material") == key_material
            and data_file.stat().st_size == meta.get("length")
            and _digest(data_file) == meta.get("digest")
        ):
            return _memmap(data_file, meta["length"], key, meta.get("characters"))
        print(f"{source}: the cached copy {data_file} is truncated or from another source; encoding it again", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{source}: encoding into the cache {data_file} (once: later runs reuse it)", flush=True)
    partial = folder / f"{key}.bin.partial-{os.getpid()}"
    progress = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"encoding {Path(source).name or source}")
    try:
        with partial.open("wb") as handle:

            def write(ids: np.ndarray):
                handle.write(ids.tobytes())
                progress.update(len(ids))

            info = {}
            length = _encode_blocks(blocks_factory(), source, normalize, write, encoding, info)
            handle.flush()
            os.fsync(handle.fileno())
        if length == 0:
            raise DataError(f"{source}: no text (the file is empty{' after normalizing' if normalize else ''})")
        meta = {"key_material": key_material, "length": length, "digest": _digest(partial), "source": source, **info}
        os.replace(partial, data_file)
        meta_partial = meta_file.with_suffix(f".json.partial-{os.getpid()}")
        meta_partial.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(meta_partial, meta_file)
    except OSError as error:
        raise UserError(
            f"cannot write the corpus cache in {folder} ({error.strerror or error}); free some disk space or set "
            f"{CACHE_ENV} to a folder with room for {total_bytes or 'the corpus'} bytes; nothing partial was kept"
        ) from None
    finally:
        progress.close()
        for leftover in folder.glob(f"{key}.*.partial-{os.getpid()}"):
            leftover.unlink(missing_ok=True)
    return _memmap(data_file, length, key, info.get("characters"))


def _memmap(path: Path, length: int, key: str, characters: str | None = None) -> np.ndarray:
    ids = np.memmap(path, dtype=np.uint8, mode="r", shape=(length,))
    ids.cache_key = key  # what the ids hold (see content_id); slices do not carry it
    ids.characters = characters  # a `chars` encoding's characters, in the order of their ids
    return ids


def remapped_ids(ids: np.ndarray, table: np.ndarray, source: str) -> np.ndarray:
    """
    `table[ids]` (a source's `chars` ids -> the run vocabulary's ids), cached and memory-mapped like the source's
    own ids: written block by block from the first cache file, never from the source again.
    """
    if np.array_equal(table[: len(ids.characters or "")], np.arange(len(ids.characters or ""))):
        return ids

    def blocks():
        for start in range(0, len(ids), READ_BLOCK):
            yield table[ids[start : start + READ_BLOCK]].tobytes()

    return cached_ids({"kind": "remapped", "ids": ids.cache_key, "table": table.tobytes().hex()}, source, blocks, False,
                      len(ids), encoding="bytes")


def file_ids(path: str | os.PathLike, normalize: bool = False, encoding: str = "text8") -> np.ndarray:
    """A text file (`.txt`, `.gz`, `.zip`) as cached ids (text8 ids, the file's own characters, or its bytes)."""
    path = Path(path)
    blocks, total = _file_blocks(path)
    blocks.close()  # opened again below, lazily, only if the cache has to be built
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return cached_ids(
        {"kind": "file", **_file_fingerprint(path)}, str(path), lambda: _file_blocks(path)[0], normalize, total, encoding
    )


def split_off_validation(ids: np.ndarray, percentage: float, source: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train, validation, their fingerprints): the last `percentage` % of a corpus held out, as views (no copies)."""
    held_out = int(len(ids) * percentage / 100)
    if not 0 < percentage < 100 or held_out < 2:
        raise UserError(f"{source}: no validation text given, and {percentage} % of it is too little to hold out; pass --validation-file")
    whole = content_id(ids)
    return ids[:-held_out], ids[-held_out:], {"train": f"{whole}[:-{held_out}]", "validation": f"{whole}[-{held_out}:]"}


# -- sources ---------------------------------------------------------------------------------------------------------
def load_corpus(config) -> Corpus:
    """
    The LM corpus a `TrainingConfig` names (see the module docstring; the exercise files when it names none), in
    the vocabulary `config.vocab` asks for: `text8`; `chars`, the distinct characters of all its texts (training,
    validation and test, as nanoGPT's shakespeare_char and char-rnn build theirs); `bytes`; or `auto`: text8 when
    every character is a text8 symbol, else chars when there are at most 255 (256 with `--unk`), else bytes.
    `--normalize` maps the text into text8 form (so text8). The choice and why are in `Corpus.vocabulary_reason`.
    """
    if config.dataset_name:
        name = config.dataset_name
        encode_splits, description = _dataset_splits(config), f"dataset {name}"
    elif config.train_file:
        files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
        name, description = config.train_file, f"file {Path(config.train_file).name}"

        def encode_splits(encoding: str) -> dict:
            return {split: file_ids(path, config.normalize, encoding) if path else None for split, path in files.items()}
    elif config.corpus == "text8":
        if config.vocab not in ("auto", "text8"):
            raise UserError(f"--corpus text8 is text8 form: train it with --vocab text8 (or auto), not {config.vocab}")
        ids = text8_ids(config.text8_source or TEXT8_URL)
        first, second = (int(len(ids) * share) for share in (TEXT8_SPLIT[0], sum(TEXT8_SPLIT)))
        whole = content_id(ids)
        fingerprint = {"train": f"{whole}[:{first}]", "validation": f"{whole}[{first}:{second}]", "test": f"{whole}[{second}:]"}
        return Corpus(ids[:first], ids[first:second], ids[second:], "text8 (90% / 5% / 5%)", fingerprint,
                      vocabulary_reason="text8: the text8 corpus")
    else:
        if config.vocab not in ("auto", "text8"):
            raise UserError(f"the exercise data is text8 form: train it with --vocab text8 (or auto), not {config.vocab}")
        train_text, dev_text = load_lm_texts(config.data_dir, config.normalize)
        return Corpus(encode_text(train_text), encode_text(dev_text), vocabulary_reason="text8: the exercise data")

    splits, vocabulary, reason = _choose_vocabulary(config, encode_splits)
    fingerprint = {}
    train, validation = splits["train"], splits["validation"]
    if validation is None:
        train, validation, fingerprint = split_off_validation(train, config.validation_split_percentage, name)
    return Corpus(train, validation, splits["test"], description, fingerprint, vocabulary, reason)


def _choose_vocabulary(config, encode_splits) -> tuple[dict, Vocabulary, str]:
    """(each split's ids in the run's vocabulary, the vocabulary, why it was chosen); see `load_corpus`."""
    if config.normalize or config.vocab == "text8":
        return encode_splits("text8"), Vocabulary(), "text8: " + ("--normalize" if config.normalize else "asked for")
    if config.vocab == "bytes":
        return encode_splits("bytes"), Vocabulary("bytes"), "bytes: asked for"
    if config.vocab == "auto":
        # text8 first: a text8-form corpus (most of them, at text8 scale) is cached as it always was, in one pass; any
        # other text stops this at its first character outside the 27, usually in the first block.
        try:
            return encode_splits("text8"), Vocabulary(), "text8: auto (every character of the corpus is a text8 symbol)"
        except NotText8:
            pass
    try:
        local = encode_splits("chars")
    except TooManyCharacters:
        if config.vocab == "chars":
            raise
        local = None
    found = sorted(set("".join(ids.characters for ids in local.values() if ids is not None))) if local else None
    # (auto only gets here for text that is not text8 form: it tried text8 first)
    vocabulary, reason = vocabulary_of_characters(found, config, config.train_file or config.dataset_name)
    if vocabulary.kind == "bytes":
        return encode_splits("bytes"), vocabulary, reason
    splits = {}
    for split, ids in local.items():
        if ids is None:
            splits[split] = None
            continue
        table = np.zeros(256, dtype=np.uint8)
        table[: len(ids.characters)] = [vocabulary.to_id[char] for char in ids.characters]
        splits[split] = remapped_ids(ids, table, f"{split} ids in the {vocabulary.kind} vocabulary")
    return splits, vocabulary, reason


def vocabulary_of_characters(found: list[str] | None, config, source: str) -> tuple[Vocabulary, str]:
    """
    (the vocabulary, why) for texts holding the distinct characters `found` (None: more than a uint8 id holds), when
    `--vocab` is chars or auto and the texts are not text8 form: chars when there are at most 255 (the LM corpus and the
    classifier's labeled texts decide alike), else bytes for auto, and an error for chars.
    """
    if found is None or len(found) > MAX_CHARS - 1:
        if config.vocab == "chars":
            count = f"{len(found)}" if found is not None else f"more than {MAX_CHARS - 1}"
            raise DataError(f"{source}: {count} distinct characters, more than {MAX_CHARS - 1}; train with --vocab bytes")
        return Vocabulary("bytes"), f"bytes: auto (more than {MAX_CHARS - 1} distinct characters)"
    how = "asked for" if config.vocab == "chars" else "auto"
    return Vocabulary("chars", "".join(found), config.unk), (
        f"chars: {how} ({len(found)} distinct characters in the training, validation and test texts)"
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


def text8_ids(source: str = TEXT8_URL) -> np.ndarray:
    """
    The whole text8 as cached ids. `source` is its URL (fetched once into the `datasets` download cache, which
    honours HF_DATASETS_OFFLINE / HF_HUB_OFFLINE), a local `text8.zip`, or the unzipped file.
    """
    if "://" in source:
        from datasets import DownloadConfig, DownloadManager

        try:
            path = DownloadManager(download_config=DownloadConfig()).download(source)
        except Exception as error:  # requests / fsspec / offline-mode errors: all mean "not fetched"
            raise UserError(
                f"cannot fetch text8 from {source} ({error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                "check the network, or download text8.zip yourself and pass --text8-source text8.zip"
            ) from None
        source = path
    return file_ids(source)


def load_dataset_splits(config) -> tuple[dict, dict]:
    """
    `config.dataset_name` (and `dataset_config`) through `datasets.load_dataset`, and which of its splits train,
    validate and test: {"train": "train", "validation": "validation" | "valid" | "dev" | None, "test": "test" | None}.
    """
    from datasets import load_dataset

    name = config.dataset_name
    try:
        splits = load_dataset(name, config.dataset_config)
    except Exception as error:  # not found, offline, unreachable, a bad builder: one clear line
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise UserError(
            f"dataset {name!r} could not be loaded ({error.__class__.__name__}: {first_line[:300]}); check the name "
            "(a Hub id or a local folder), the network, or HF_HUB_OFFLINE"
        ) from None
    if "train" not in splits:
        raise UserError(f"dataset {name!r} has no train split (it has {', '.join(splits)})")
    chosen = {"train": "train", "validation": next((split for split in ("validation", "valid", "dev") if split in splits), None),
              "test": "test" if "test" in splits else None}
    return splits, chosen


def _dataset_splits(config):
    """A function of the encoding that returns a `datasets` dataset's splits as cached ids (see load_corpus)."""
    name = config.dataset_name
    splits, chosen = load_dataset_splits(config)
    if config.text_column not in splits["train"].column_names:
        raise UserError(
            f"dataset {name!r} has no column {config.text_column!r} (columns: {', '.join(splits['train'].column_names)}); "
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

        fingerprint = {"kind": "dataset", "name": name, "config": config.dataset_config, "split": split,
                       "column": config.text_column, "fingerprint": dataset._fingerprint}
        return cached_ids(fingerprint, source, blocks, config.normalize, encoding=encoding)

    def encode_splits(encoding: str) -> dict:
        return {split: split_ids(chosen[split], encoding) if chosen[split] else None for split in ("train", "validation", "test")}

    return encode_splits


# -- training windows ------------------------------------------------------------------------------------------------
class LMWindows(torch.utils.data.Dataset):
    """
    Training windows of `chunk_size` characters (`input_ids`) and the character after each (`shift_labels`), cut
    from an id array (in memory or memory-mapped) when a batch asks for them.

    With `carry_state`, the text is split into `num_streams` equal contiguous streams (the batch size); row
    `k * num_streams + s` is window k of stream s, so an unshuffled loader with batch size `num_streams` feeds each
    stream's windows in order and the GRU state after one batch is the right start for the next (truncated BPTT);
    under several processes each takes its share of the streams. The last window of each stream may be shorter.
    Without `carry_state` every window is `chunk_size` long (batches are shuffled): the last one reaches back over
    the one before, with the overlap masked out of its targets, so each target still counts once.
    `masked_spans`: (start, end) character spans that are never targets (-100).
    """

    def __init__(self, ids: np.ndarray, chunk_size: int, num_streams: int = 1, carry_state: bool = True, masked_spans=()):
        if chunk_size < 1 or num_streams < 1:
            raise UserError("chunk_size and the number of streams (batch size) must be at least 1")
        self.ids = np.asarray(ids)  # a plain view of a memory map: its slices cost half as much as memmap slices
        self.chunk_size = chunk_size
        self.carry_state = carry_state
        self.num_streams = num_streams if carry_state else 1
        self.stream_length = (len(ids) - 1) // self.num_streams
        if self.stream_length < 1:
            raise DataError(f"text of {len(ids)} characters is too short for {self.num_streams} streams")
        self.windows_per_stream = math.ceil(self.stream_length / chunk_size)
        self.target_mask = None
        if masked_spans:
            self.target_mask = np.zeros(len(ids), dtype=bool)
            for start, end in masked_spans:
                self.target_mask[start:end] = True

    def __len__(self) -> int:
        return self.windows_per_stream * self.num_streams

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        window, stream = divmod(index, self.num_streams)
        offset = stream * self.stream_length
        begin = offset + window * self.chunk_size
        end = offset + min((window + 1) * self.chunk_size, self.stream_length)
        labels = self.ids[begin + 1 : end + 1].astype(np.int64)
        if self.target_mask is not None:
            labels[self.target_mask[begin + 1 : end + 1]] = -100
        if not self.carry_state and end - begin < self.chunk_size <= self.stream_length:
            taught = end - begin
            begin = end - self.chunk_size
            labels = np.concatenate([np.full(self.chunk_size - taught, -100, dtype=np.int64), labels])
        input_ids = torch.from_numpy(self.ids[begin:end].astype(np.int64))
        return {"input_ids": input_ids, "shift_labels": torch.from_numpy(labels)}

    def __getitems__(self, indices: list[int]) -> list[dict]:
        # The DataLoader's batched fetch: one call per batch instead of one per row.
        return [self[index] for index in indices]

