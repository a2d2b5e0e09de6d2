"""LM corpora: files, `datasets` datasets and the full text8, encoded once into a memory-mapped cache."""

import gzip
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest
from conftest import generated_corpus  # noqa: E402

from hf_charnn import DataError, UserError
from hf_charnn.data import sources as corpus_module
from hf_charnn.data.corpus import load_corpus
from hf_charnn.data.sources import encode_text, file_ids, text8_ids
from hf_charnn.data.windows import LMWindows
from hf_charnn.models.tokenization_char_gru import Vocabulary, normalize_text
from hf_charnn.training.settings import TrainingConfig

decode_ids = Vocabulary().decode


@pytest.fixture(scope="module")
def text():
    return generated_corpus(300_000)


def lm_config(**settings):
    return TrainingConfig.from_preset("lm", "default", **settings)


def test_a_file_is_encoded_once_and_memory_mapped(tmp_path, corpus_cache, text, capsys):
    (tmp_path / "big.txt").write_text(text)
    first = file_ids(tmp_path / "big.txt")
    assert isinstance(first, np.memmap) and first.dtype == np.uint8
    assert decode_ids(first) == text
    assert "encoding into the cache" in capsys.readouterr().out
    data_file = next(corpus_cache.glob("*.bin"))
    written = data_file.stat().st_mtime_ns
    again = file_ids(tmp_path / "big.txt")
    assert "encoding" not in capsys.readouterr().out and data_file.stat().st_mtime_ns == written
    assert np.array_equal(again, first)
    (tmp_path / "big.txt").write_text(text[::-1])  # another source at the same path: a new cache entry
    assert decode_ids(file_ids(tmp_path / "big.txt")) == text[::-1]
    assert len(list(corpus_cache.glob("*.bin"))) == 2


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_encoding_bar_shows_on_a_terminal_unless_a_run_asks_for_none(tmp_path, corpus_cache, monkeypatch):
    for name, progress_bar in [("bar.txt", True), ("quiet.txt", False)]:
        (tmp_path / name).write_text(generated_corpus(20_000) + name)
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        load_corpus(lm_config(train_file=str(tmp_path / name), progress_bar=progress_bar))
        monkeypatch.undo()
        assert (f"encoding {name}" in terminal.getvalue()) == progress_bar, terminal.getvalue()


def test_gz_and_zip_read_like_the_plain_file(tmp_path, corpus_cache, text):
    (tmp_path / "big.txt").write_text(text)
    with gzip.open(tmp_path / "big.txt.gz", "wt") as handle:
        handle.write(text)
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.txt", text)
    for name in ("big.txt.gz", "big.zip"):
        assert decode_ids(file_ids(tmp_path / name)) == text, name
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.txt", "ab")
        archive.writestr("b.txt", "cd")
    with pytest.raises(DataError, match="two.zip: the zip holds 2 files"):
        file_ids(tmp_path / "two.zip")


def test_errors_name_the_file_and_the_position_in_the_whole_file(tmp_path, corpus_cache, monkeypatch, text):
    monkeypatch.setattr(corpus_module, "READ_BLOCK", 1000)  # the bad character lies many blocks in
    (tmp_path / "bad.txt").write_text(text[:5432] + "X" + text[5433:20_000])
    with pytest.raises(DataError, match=r"bad.txt: character 'X' at position 5432 .*--normalize"):
        file_ids(tmp_path / "bad.txt")
    assert not list(corpus_cache.glob("*.bin")) and not list(corpus_cache.glob("*partial*"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        file_ids(tmp_path / "empty.txt")
    with pytest.raises(DataError, match="missing.txt: file not found"):
        file_ids(tmp_path / "missing.txt")


def test_normalizing_in_blocks_equals_normalizing_the_whole_text(tmp_path, corpus_cache, monkeypatch):
    monkeypatch.setattr(corpus_module, "READ_BLOCK", 64)
    raw = "The year 1984, Orwell's novel -- and Café society!\n" * 40 + "Ünïcödé 2001..."
    (tmp_path / "raw.txt").write_text(raw)
    assert decode_ids(file_ids(tmp_path / "raw.txt", normalize=True)) == normalize_text(raw)


def test_a_truncated_or_foreign_cache_is_detected_and_rebuilt(tmp_path, corpus_cache, text, capsys):
    (tmp_path / "a.txt").write_text(text[:50_000])
    (tmp_path / "b.txt").write_text(text[50_000:90_000])
    file_ids(tmp_path / "a.txt")
    file_ids(tmp_path / "b.txt")
    a_meta = max(corpus_cache.glob("*.json"), key=lambda path: json.loads(path.read_text())["length"])
    a_data = a_meta.with_suffix(".bin")
    b_data = next(path for path in corpus_cache.glob("*.bin") if path != a_data)
    a_data.write_bytes(a_data.read_bytes()[:1000])  # truncated
    capsys.readouterr()
    assert decode_ids(file_ids(tmp_path / "a.txt")) == text[:50_000]
    assert "truncated or from another source" in capsys.readouterr().out
    a_data.write_bytes(
        b_data.read_bytes()[:50_000] + b"\x00" * (50_000 - b_data.stat().st_size)
    )  # same size, other text
    assert decode_ids(file_ids(tmp_path / "a.txt")) == text[:50_000]
    assert "truncated or from another source" in capsys.readouterr().out


FILL_THE_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
from hf_charnn.cli import main
sys.exit(main(["train-lm", "--train-file", sys.argv[1], "--output-dir", sys.argv[2], "--max-steps", "1"]))
"""


def test_a_full_disk_while_caching_keeps_nothing_partial(tmp_path, corpus_cache, text):
    (tmp_path / "big.txt").write_text(text)
    env = {**os.environ, "HF_CHARNN_CACHE": str(corpus_cache)}
    result = subprocess.run(
        [sys.executable, "-c", FILL_THE_DISK, str(tmp_path / "big.txt"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot write the corpus cache" in result.stderr and "nothing partial was kept" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(corpus_cache.iterdir()) == []
    assert decode_ids(file_ids(tmp_path / "big.txt")) == text  # with room, the next run builds it whole


def test_training_file_splits_and_the_validation_percentage(tmp_path, corpus_cache, text):
    (tmp_path / "train.txt").write_text(text[:100_000])
    (tmp_path / "valid.txt").write_text(text[100_000:110_000])
    (tmp_path / "test.txt").write_text(text[110_000:115_000])
    corpus = load_corpus(
        lm_config(
            train_file=str(tmp_path / "train.txt"),
            validation_file=str(tmp_path / "valid.txt"),
            test_file=str(tmp_path / "test.txt"),
        )
    )
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (100_000, 10_000, 5_000)
    held_out = load_corpus(lm_config(train_file=str(tmp_path / "train.txt"), validation_split_percentage=10))
    assert (len(held_out.train), len(held_out.validation), held_out.test) == (90_000, 10_000, None)
    assert decode_ids(held_out.validation) == text[90_000:100_000]


def test_settings_that_cannot_work_together():
    for settings, message in [
        (dict(train_file="a.txt", corpus="text8"), "give one corpus"),
        (dict(validation_file="v.txt"), "need --train-file"),
        (dict(corpus="wiki"), "unknown corpus"),
        (dict(mixed_precision="fp8"), "unknown mixed precision"),
        (dict(max_steps=0), "--max-steps must be at least 1"),
    ]:
        with pytest.raises(UserError, match=message):
            lm_config(**settings).check()


def test_a_local_dataset_folder_through_datasets(tmp_path, corpus_cache, text):
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    (folder / "train.txt").write_text("\n".join(text[i : i + 1000] for i in range(0, 60_000, 1000)) + "\n")
    (folder / "validation.txt").write_text(text[60_000:70_000] + "\n")
    corpus = load_corpus(lm_config(dataset_name=str(folder)))
    assert len(corpus.train) >= 60_000 and decode_ids(corpus.validation).strip() == text[60_000:70_000].strip()
    assert corpus.test is None
    with pytest.raises(UserError, match="no column 'body'"):
        load_corpus(lm_config(dataset_name=str(folder), text_column="body"))


@pytest.mark.slow
def test_a_dataset_that_cannot_be_loaded_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    command = [
        sys.executable,
        "-m",
        "hf_charnn",
        "train-lm",
        "--dataset-name",
        "nobody/no-such-dataset",
        "--output-dir",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 2
    assert "dataset 'nobody/no-such-dataset' could not be loaded" in result.stderr and "HF_HUB_OFFLINE" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def text8_zip(tmp_path, text):
    path = tmp_path / "served" / "text8.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", text[:200_000])
    return path


def test_text8_from_a_local_zip_splits_90_5_5(text8_zip, corpus_cache, text):
    corpus = load_corpus(lm_config(corpus="text8", text8_source=str(text8_zip)))
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (180_000, 10_000, 10_000)
    assert decode_ids(corpus.test) == text[190_000:200_000]


def test_text8_is_downloaded_once_through_datasets(text8_zip, corpus_cache, tmp_path, monkeypatch, text):
    """The real download path, against an HTTP server on the loopback interface."""
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(text8_zip.parent), **kwargs)

        def log_message(self, *args):
            requests.append(self.requestline)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import datasets

    # Where HF_DATASETS_CACHE would put downloads, had it been set before datasets was imported.
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", tmp_path / "datasets-cache" / "downloads")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/text8.zip"
        assert decode_ids(text8_ids(url)) == text[:200_000]
        fetched = [line for line in requests if line.startswith("GET")]
        assert len(fetched) == 1
        assert decode_ids(text8_ids(url)) == text[:200_000]
        assert len([line for line in requests if line.startswith("GET")]) == 1  # the second run reads the cache
        with pytest.raises(UserError, match="cannot fetch text8 from .*missing.zip"):
            text8_ids(url.replace("text8.zip", "missing.zip"))
    finally:
        server.shutdown()


def test_windows_are_cut_from_the_memory_map_on_the_fly(tmp_path, corpus_cache, text):
    (tmp_path / "big.txt").write_text(text)
    ids = file_ids(tmp_path / "big.txt")
    windows = LMWindows(ids, chunk_size=64, num_streams=8)
    assert np.shares_memory(windows.ids, ids) and windows.ids.dtype == np.uint8  # no copy of the corpus
    stream_length = (len(text) - 1) // 8
    row = windows[8 * 3 + 5]  # window 3 of stream 5
    begin = 5 * stream_length + 3 * 64
    assert row["input_ids"].tolist() == encode_text(text[begin : begin + 64]).tolist()
    assert row["shift_labels"].tolist() == encode_text(text[begin + 1 : begin + 65]).tolist()
    assert [r["input_ids"].tolist() for r in windows.__getitems__([0, 1])] == [
        windows[0]["input_ids"].tolist(),
        windows[1]["input_ids"].tolist(),
    ]
