import os
import sys
from pathlib import Path

import pytest
import torch

import hf_charnn
from hf_charnn.exercise.files import DATA_DIR_ENV, PACKAGED_DATA_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
# The exercise's reference copy, beside our own checkout only: tests that compare against it skip without it.
REFERENCE_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The exercise files: the packaged ones, unless $HF_CHARNN_DATA names another folder."""
    folder = Path(os.environ.get(DATA_DIR_ENV) or PACKAGED_DATA_DIR)
    if not (folder / "text8-100k.txt").is_file():
        pytest.fail(f"exercise data not found in {folder}: unset {DATA_DIR_ENV} or point it at the exercise files")
    return folder


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, data_dir) -> Path:
    """A few thousand characters and 100 + 100 examples cut from the shared data, for fast training tests."""
    folder = tmp_path_factory.mktemp("tiny-data")
    (folder / "text8-100k.txt").write_text((data_dir / "text8-100k.txt").read_text()[:4000])
    (folder / "text8-dev.txt").write_text((data_dir / "text8-dev.txt").read_text()[:200])
    for split, count in (("train", 100), ("dev", 50)):
        for label in ("consonant", "vowel"):
            lines = (data_dir / f"{split}-{label}-examples.txt").read_text().splitlines()[:count]
            (folder / f"{split}-{label}-examples.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def tiny_config() -> hf_charnn.CharGRUConfig:
    return hf_charnn.CharGRUConfig(embedding_size=8, hidden_size=16, num_hidden_layers=2)


@pytest.fixture
def random_lm(tiny_config) -> hf_charnn.CharGRUForCausalLM:
    torch.manual_seed(0)
    return hf_charnn.CharGRUForCausalLM(tiny_config).eval()


@pytest.fixture
def random_classifier() -> hf_charnn.CharGRUForSequenceClassification:
    """A vowel/consonant classifier of tiny sizes (the exercise's labels)."""
    torch.manual_seed(0)
    config = hf_charnn.CharGRUConfig(
        embedding_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        id2label={0: "consonant", 1: "vowel"},
        label2id={"consonant": 0, "vowel": 1},
    )
    return hf_charnn.CharGRUForSequenceClassification(config).eval()


def generated_corpus(chars: int, seed: int = 0) -> str:
    """A text8-form text of `chars` characters: words drawn from text8-100k by their frequency there."""
    import numpy as np

    words, counts = np.unique(np.array((PACKAGED_DATA_DIR / "text8-100k.txt").read_text().split()), return_counts=True)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(words, size=chars // 4, p=counts / counts.sum())  # ~5.5 chars a word with its space
    text = " ".join(drawn.tolist())
    while len(text) < chars:
        text += " " + " ".join(rng.choice(words, size=1000, p=counts / counts.sum()).tolist())
    return text[:chars]


@pytest.fixture
def corpus_cache(tmp_path, monkeypatch) -> Path:
    """A private corpus cache for the test (HF_CHARNN_CACHE)."""
    folder = tmp_path / "corpus-cache"
    monkeypatch.setenv("HF_CHARNN_CACHE", str(folder))
    return folder


# `accelerate launch` of CPU processes (gloo), as README shows it; the port and the command follow.
ACCELERATE_LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]
STACKS_AFTER_SECONDS = 300  # a launched run of these tests takes 10-60 s, even on 2 busy cores


def launch_env(**extra) -> dict:
    """The environment of launched training processes: CPU, one thread each, and a stack dump if one hangs."""
    dumps = str(Path(__file__).parent / "stack_dumps")
    path = os.pathsep.join(filter(None, [dumps, os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": path,
        "HF_CHARNN_TEST_STACKS_AFTER": str(STACKS_AFTER_SECONDS),
        **extra,
    }


def free_port() -> int:
    """A TCP port nobody listens on now (for a launcher's rendezvous or a test server), so runs never share one."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
