"""Issue 27, part 1: `--model-name-or-path` (a folder or a Hub id at a revision) for every task."""

import json
import random
import sys

import pytest
import torch
from hub_server import LocalHub
from safetensors.torch import load_file
from test_hub import TOKEN, hub_env, push, run
from test_labels import run_cli
from test_multilabel import write_jsonl

from hf_charnn.training import TrainingConfig
from hf_charnn.training.tasks import task_for

WORDS = "the cat sat on a mat and saw an owl; Then it ran off, far away! Who knew? ".split(" ")
TINY_LM = ["--embedding-size", "8", "--hidden-size", "16", "--chunk-size", "16", "--batch-size", "4"]


def english(path, count: int, seed: int, extra: str = ""):
    rng = random.Random(seed)
    path.write_text(" ".join(rng.choice(WORDS) for _ in range(count)) + extra)
    return path


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A small chars LM trained through the CLI on mixed-case English-like text."""
    folder = tmp_path_factory.mktemp("start-lm")
    text = english(folder / "text.txt", 1500, 0)
    argv = ["train-lm", "--train-file", text, *TINY_LM, "--max-steps", "30", "--no-progress-bar"]
    from hf_charnn.cli import main

    assert main([str(arg) for arg in [*argv, "--output-dir", folder / "lm"]]) in (0, None)
    return folder / "lm"


def started(output_dir, **settings):
    """The task's model as a run would build it before training: data read, sizes adopted, weights loaded."""
    task_name = settings.pop("task")
    config = TrainingConfig.from_preset(task_name, "auto", output_dir=str(output_dir), **settings)
    task = task_for(config)
    task.load()
    task.adopt_starting_model()
    torch.manual_seed(0)
    return task, task.new_model()


def test_an_lm_continues_on_new_text_with_every_weight_and_its_sizes(lm, tmp_path, capsys):
    new_text = english(tmp_path / "new.txt", 800, 1)
    task, model = started(tmp_path / "run", task="lm", train_file=str(new_text), model_name_or_path=str(lm))
    assert (task.config.embedding_size, task.config.hidden_size) == (8, 16)  # the model's, over the recipe's
    saved = load_file(lm / "model.safetensors")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)
    assert task.starting_record["kept"] == ["the embedding and GRU", "the head"] and not task.starting_record["new"]
    code, out, _ = run_cli(
        capsys, "train-lm", "--train-file", new_text, "--model-name-or-path", lm, "--max-steps", "5",
        "--no-progress-bar", "--output-dir", tmp_path / "cli",
    )  # fmt: skip
    assert code == 0 and "started from" in out and "(from the starting model: embedding_size, hidden_size" in out
    card = (tmp_path / "cli" / "README.md").read_text()
    assert "- Started from `lm`, an LM: kept the embedding and GRU, the head." in card
    summary = json.loads((tmp_path / "cli" / "eval_results.json").read_text())
    assert summary["starting_model"]["model_name_or_path"] == str(lm)


def test_characters_the_model_lacks_are_refused_or_added_with_extend_vocab_or_unk(lm, tmp_path, capsys):
    new_text = english(tmp_path / "new.txt", 800, 1, extra=" 42 [ok]")
    out_dir = tmp_path / "refused"
    argv = ["train-lm", "--train-file", new_text, "--model-name-or-path", lm, "--max-steps", "2", "--no-progress-bar"]
    code, _, err = run_cli(capsys, *argv, "--output-dir", out_dir)
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err  # (the cache's encoding bar above)
    assert "new.txt (train), character " in err and "'2' is not in the vocabulary of" in err
    assert "--extend-vocab" in err and "--unk" in err and not out_dir.exists()

    task, model = started(
        tmp_path / "x", task="lm", train_file=str(new_text), model_name_or_path=str(lm), extend_vocab=True
    )
    old = task.starting.vocabulary
    new = task.vocabulary
    assert new.size == old.size + 4 and new.symbols[: old.size] == old.symbols  # '2', '4', '[', ']'
    saved = load_file(lm / "model.safetensors")
    embedding = model.char_gru.embeddings.weight.detach()
    torch.testing.assert_close(embedding[: old.size], saved["char_gru.embeddings.weight"][: old.size])
    torch.testing.assert_close(embedding[new.size], saved["char_gru.embeddings.weight"][old.size])  # the padding row
    torch.testing.assert_close(model.lm_head.weight.detach()[: old.size], saved["lm_head.weight"])
    torch.testing.assert_close(model.char_gru.gru.weight_hh_l0.detach(), saved["char_gru.gru.weight_hh_l0"])
    assert model.lm_head.weight.shape[0] == new.size
    code, out, _ = run_cli(capsys, *argv, "--extend-vocab", "--output-dir", tmp_path / "extended")
    assert code == 0 and "4 new" in out
    task, model = started(tmp_path / "y", task="lm", train_file=str(new_text), model_name_or_path=str(lm), unk=True)
    assert task.vocabulary.unk and task.vocabulary.size == old.size + 1


def test_an_lms_backbone_starts_a_classifier_and_a_tagger_with_new_heads(lm, tmp_path, capsys):
    saved = load_file(lm / "model.safetensors")
    train = write_jsonl(tmp_path / "train.jsonl", 60, 0)
    task, model = started(
        tmp_path / "c", task="classifier", train_file=str(train), model_name_or_path=str(lm), extend_vocab=True
    )
    assert model.config.bidirectional and model.config.hidden_size == 16  # the LM's sizes, the recipe's directions
    torch.testing.assert_close(model.char_gru.gru.weight_ih_l0.detach(), saved["char_gru.gru.weight_ih_l0"])
    assert not torch.equal(model.char_gru.gru.weight_ih_l0_reverse.detach(), saved["char_gru.gru.weight_ih_l0"])
    assert task.starting_record["kept"][0].endswith("new rows) and the GRU's forward direction")
    assert {"the head (classifier)", "ngram_linear", "the GRU's backward direction"} <= set(task.starting_record["new"])
    tagged = tmp_path / "words.txt"
    tagged.write_text(english(tmp_path / "w.txt", 400, 3).read_text().replace(";", "").replace(",", ""))
    task, model = started(
        tmp_path / "t", task="tagger", train_file=str(tagged), derive="word-boundaries", model_name_or_path=str(lm)
    )
    torch.testing.assert_close(model.char_gru.embeddings.weight.detach(), saved["char_gru.embeddings.weight"])
    assert set(task.starting_record["new"]) == {"the head (classifier)", "ngram_linear", "the GRU's backward direction"}
    code, _, err = run_cli(
        capsys, "train-classifier", "--train-file", train, "--model-name-or-path", lm, "--extend-vocab",
        "--num-hidden-layers", "2", "--output-dir", tmp_path / "contradicts",
    )  # fmt: skip
    assert code == 2 and "--num-hidden-layers 2: " in err and "has num_hidden_layers 1" in err
    assert not (tmp_path / "contradicts").exists()


def test_a_classifier_continues_with_its_head_for_the_same_labels_and_a_new_one_for_others(lm, tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", 80, 0)
    argv = ["train-classifier", "--train-file", train, "--embedding-size", "8", "--hidden-size", "16"]
    code, _, _ = run_cli(capsys, *argv, "--epochs", "1", "--no-progress-bar", "--output-dir", tmp_path / "first")
    assert code == 0
    first = load_file(tmp_path / "first" / "model.safetensors")
    more = write_jsonl(tmp_path / "more.jsonl", 80, 7)
    task, model = started(
        tmp_path / "same", task="classifier", train_file=str(more), model_name_or_path=str(tmp_path / "first")
    )
    torch.testing.assert_close(model.classifier.weight.detach(), first["classifier.weight"], rtol=0, atol=0)
    assert task.starting_record["kept"] == ["the embedding and GRU", "the head"]
    other = tmp_path / "other.jsonl"
    other.write_text(more.read_text().replace('"animal"', '"beast"'))  # other label names, as many labels
    task, model = started(
        tmp_path / "other", task="classifier", train_file=str(other), model_name_or_path=str(tmp_path / "first")
    )
    assert not torch.equal(model.classifier.weight.detach(), first["classifier.weight"])
    assert task.starting_record["new"] == ["the head (classifier)"]
    torch.testing.assert_close(model.char_gru.gru.weight_hh_l0.detach(), first["char_gru.gru.weight_hh_l0"])


@pytest.mark.parametrize(
    "source, expected",
    [
        ("no/such-folder-or-model", "could not be downloaded"),  # (HF_HUB_OFFLINE: the cache has nothing)
        ("not a path or an id", "no such folder, and not a Hub id"),
    ],
)
def test_an_unknown_model_is_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch, source, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    text = english(tmp_path / "t.txt", 200, 0)
    out_dir = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train-lm", "--train-file", text, "--model-name-or-path", source, "--output-dir", out_dir
    )
    assert code == 2 and expected in err and "Traceback" not in err and not out_dir.exists()


@pytest.mark.slow
def test_a_pushed_model_is_fine_tuned_by_hub_id_at_a_pinned_revision(tmp_path, lm):
    text = english(tmp_path / "new.txt", 800, 1)
    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint, HF_TOKEN=TOKEN)
        assert push(lm, "alice/char-lm", env, "--token", TOKEN).returncode == 0
        pinned = hub.state.repos["alice/char-lm"]["sha"]
        assert push(lm, "alice/char-lm", env, "--token", TOKEN).returncode == 0
        assert hub.state.repos["alice/char-lm"]["sha"] != pinned
        train = [sys.executable, "-m", "hf_charnn", "train-lm", "--train-file", str(text), "--no-progress-bar"]
        train += ["--model-name-or-path", "alice/char-lm", "--max-steps", "3"]
        result = run([*train, "--revision", pinned, "--output-dir", str(tmp_path / "tuned")], env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"alice/char-lm at {pinned[:12]}" in result.stdout
        card = (tmp_path / "tuned" / "README.md").read_text()
        assert "base_model: alice/char-lm" in card and f"(commit `{pinned}`)" in card
        summary = json.loads((tmp_path / "tuned" / "eval_results.json").read_text())
        assert summary["starting_model"]["commit"] == pinned
        # The same Hub id starts a classifier too (the LM's backbone, a new head).
        labeled = write_jsonl(tmp_path / "labeled.jsonl", 60, 0)
        classify = [
            sys.executable,
            "-m",
            "hf_charnn",
            "train-classifier",
            "--train-file",
            str(labeled),
            "--epochs",
            "1",
        ]
        classify += ["--model-name-or-path", "alice/char-lm", "--revision", pinned, "--extend-vocab"]
        result = run([*classify, "--no-progress-bar", "--output-dir", str(tmp_path / "classifier")], env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "base_model: alice/char-lm" in (tmp_path / "classifier" / "README.md").read_text()
        for flags, expected in (
            (["--revision", "f" * 40], "has no such revision on the Hub"),
            (["--model-name-or-path", "alice/no-such-model"], "no such model on the Hub"),
        ):
            failed = run([*train, *flags, "--output-dir", str(tmp_path / "failed")], env)
            assert failed.returncode == 2, failed.stderr[-2000:]
            assert expected in failed.stderr and "Traceback" not in failed.stderr
            assert not (tmp_path / "failed").exists()


def test_from_python_a_tagger_trains_from_an_lm_folder(lm, tmp_path):
    """The Python API: `model_name_or_path` in the settings, `train()` as the command line runs it."""
    from hf_charnn.training import train

    text = tmp_path / "words.txt"
    text.write_text(english(tmp_path / "w.txt", 600, 4).read_text().replace(";", "").replace(",", ""))
    config = TrainingConfig.from_preset(
        "tagger", "auto", train_file=str(text), derive="word-boundaries", model_name_or_path=str(lm),
        epochs=1, output_dir=str(tmp_path / "tagger"), progress_bar=False,
    )  # fmt: skip
    summary = train(config)
    assert summary["starting_model"]["kept"][0] == "the embedding and the GRU's forward direction"
    saved, tagger = load_file(lm / "model.safetensors"), load_file(tmp_path / "tagger" / "model.safetensors")
    assert saved["char_gru.gru.weight_hh_l0"].shape == tagger["char_gru.gru.weight_hh_l0"].shape
    assert "- Started from `lm`, an LM:" in (tmp_path / "tagger" / "README.md").read_text()
