"""
The corpus cache: a source encoded once into a uint8 file of ids, read back through a memory map (as nanoGPT does
with its token files), keyed by a checksum of the source's content. Also the one digest of hf_charnn's fingerprints.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError, UserError

CACHE_ENV = "HF_CHARNN_CACHE"
CACHE_FORMAT = 2  # bump when the cache layout or the encoding changes
READ_BLOCK = 8 << 20  # bytes read, checked and encoded at a time


def cache_home() -> Path:
    """hf_charnn's folder under the Hugging Face cache ($HF_HOME, default ~/.cache/huggingface): corpora, precision."""
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hf_charnn"


def cache_dir() -> Path:
    """$HF_CHARNN_CACHE, else hf_charnn/corpora under the Hugging Face cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return cache_home() / "corpora"


def digest(chunks) -> str:
    """
    The checksum (blake2b, 16 bytes, hex) of a stream of bytes-like chunks: every fingerprint of hf_charnn uses it.
    """
    hasher = hashlib.blake2b(digest_size=16)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def file_digest(path: Path) -> str:
    def blocks():
        with path.open("rb") as handle:
            while block := handle.read(READ_BLOCK):
                yield block

    return digest(blocks())


def content_id(ids: np.ndarray) -> str:
    """
    "length:checksum" of an id array. A cached corpus is named by its cache key (itself a checksum of the source's
    content), so a 100M-character corpus is not read again; other arrays are hashed block by block (no copy).
    """
    key = getattr(ids, "cache_key", None)
    if key is not None:
        return f"{len(ids)}:{key}"
    blocks = (np.ascontiguousarray(ids[start : start + READ_BLOCK]).data for start in range(0, len(ids), READ_BLOCK))
    return f"{len(ids)}:{digest(blocks)}"


def cached_ids(
    fingerprint: dict,
    source: str,
    encode,
    normalize: bool,
    total_bytes: int | None = None,
    encoding: str = "text8",
    progress_bar: bool = True,
) -> np.ndarray:
    """
    The encoded corpus for `fingerprint`, memory-mapped from the cache; built (with a progress bar) when missing,
    truncated, or written for another source: `encode(write, info)` passes each block of uint8 ids to `write`, may
    note what it found in `info` (a `chars` encoding's characters), and returns the count. `normalize` and
    `encoding` are part of the key; `progress_bar=False` (a run's `--no-progress-bar`) draws none. The array is
    written to a temporary file and renamed into place only when complete, so a run that dies or hits a full disk
    while caching never leaves a cache that is reused.
    """
    key_material = {"format": CACHE_FORMAT, "normalize": normalize, "encoding": encoding, **fingerprint}
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
            and file_digest(data_file) == meta.get("digest")
        ):
            return _memmap(data_file, meta["length"], key, meta.get("characters"))
        print(
            f"{source}: the cached copy {data_file} is truncated or from another source; encoding it again", flush=True
        )
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{source}: encoding into the cache {data_file} (once: later runs reuse it)", flush=True)
    partial = folder / f"{key}.bin.partial-{os.getpid()}"
    # A bar where a person watches; none in a log file (stderr not a terminal: tqdm's `disable=None`), where every
    # redraw would be a line of `\r` frames (the line above already says what is being done), nor where it was asked
    # for none.
    progress = tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"encoding {Path(source).name or source}",
        disable=None if progress_bar else True,
    )
    try:
        with partial.open("wb") as handle:

            def write(ids: np.ndarray):
                handle.write(ids.tobytes())
                progress.update(len(ids))

            info = {}
            length = encode(write, info)
            handle.flush()
            os.fsync(handle.fileno())
        if length == 0:
            raise DataError(f"{source}: no text (the file is empty{' after normalizing' if normalize else ''})")
        meta = {
            "key_material": key_material,
            "length": length,
            "digest": file_digest(partial),
            "source": source,
            **info,
        }
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

    def encode(write, info) -> int:
        for start in range(0, len(ids), READ_BLOCK):
            write(table[ids[start : start + READ_BLOCK]])
        return len(ids)

    return cached_ids(
        {"kind": "remapped", "ids": ids.cache_key, "table": table.tobytes().hex()},
        source,
        encode,
        False,
        len(ids),
        encoding="bytes",
    )
