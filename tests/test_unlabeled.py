"""Issue 27, part 2: unlabeled texts that help a classifier (an LM on them starts it)."""

import json

import pytest
from safetensors.torch import load_file
from test_labels import labeled_rows, run_cli, write_csv

from hf_charnn.training.tasks.classification.unlabeled import lm_budget

COLUMNS = ["--text-column", "sentence", "--label-column", "kind"]
TINY = ["--embedding-size", "8", "--hidden-size", "16", "--epochs", "1", "--no-progress-bar"]


def unlabeled_file(path, count: int, seed: int):
    path.write_text("\n".join(text for text, _ in labeled_rows(count, seed)) + "\n")
    return path


def test_an_lm_on_unlabeled_texts_starts_the_classifier_and_is_saved_beside_it(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", labeled_rows(120, 0))
    unlabeled = unlabeled_file(tmp_path / "more.txt", 600, 5)
    argv = ["train-classifier", "--train-file", train, *COLUMNS, "--unlabeled-file", unlabeled, *TINY]
    code, out, _ = run_cli(capsys, *argv, "--unlabeled-lm-time", "2s", "--output-dir", tmp_path / "run")
    assert code == 0 and "started from" in out and "unlabeled-lm" in out
    lm_dir = tmp_path / "run" / "unlabeled-lm"
    assert (lm_dir / "model.safetensors").is_file() and (lm_dir / "README.md").is_file()
    summary = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    record = summary["unlabeled_lm"]
    assert record["texts"] == 600 and 100 < record["training_texts"] < 120 and record["results"]["loss"] > 0
    # What the LM read: the unlabeled texts and the training texts (not the held-out validation ones).
    assert len((lm_dir / "texts.txt").read_text().splitlines()) == 600 + record["training_texts"]
    assert summary["starting_model"]["name"] == "unlabeled-lm"
    assert summary["starting_model"]["sizes"]["hidden_size"] == 16  # the classifier's flags sized the LM
    lm, classifier = load_file(lm_dir / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert lm["char_gru.gru.weight_ih_l0"].shape == classifier["char_gru.gru.weight_ih_l0"].shape
    card = (tmp_path / "run" / "README.md").read_text()
    assert "First a character LM was trained on 600 unlabeled texts (more.txt)" in card


@pytest.mark.parametrize("content", ["", "\n   \n\n"], ids=["empty", "blank lines"])
def test_an_empty_unlabeled_file_is_one_line_and_creates_nothing(tmp_path, capsys, content):
    train = write_csv(tmp_path / "train.csv", labeled_rows(60, 0))
    empty = tmp_path / "empty.txt"
    empty.write_text(content)
    argv = ["train-classifier", "--train-file", train, *COLUMNS]
    code, _, err = run_cli(capsys, *argv, "--unlabeled-file", empty, "--output-dir", tmp_path / "run")
    assert code == 2 and "empty.txt: no texts" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli(capsys, *argv, "--unlabeled-file", tmp_path / "missing.txt", "--output-dir", tmp_path / "x")
    assert code == 2 and "missing.txt: file not found" in err and not (tmp_path / "x").exists()


def test_the_lm_has_its_share_of_an_explicit_budget_and_its_own_time_otherwise():
    from hf_charnn.training import TrainingConfig

    config = TrainingConfig.from_preset("classifier", "auto", max_train_time="100s", unlabeled_share=0.3)
    assert lm_budget(config) == ("30s", "70s")
    config = TrainingConfig.from_preset("classifier", "auto", unlabeled_lm_time="45s")
    assert lm_budget(config) == ("45s", config.max_train_time)


def test_unlabeled_texts_from_a_datasets_dataset(tmp_path, capsys):
    """`--unlabeled-dataset`: a `datasets` dataset (here a local folder of CSV) and its --text-column."""
    train = write_csv(tmp_path / "train.csv", labeled_rows(80, 0))
    folder = tmp_path / "more"
    folder.mkdir()
    write_csv(folder / "train.csv", [(text, "") for text, _ in labeled_rows(300, 9)], header=("sentence", "unused"))
    argv = ["train-classifier", "--train-file", train, *COLUMNS, "--unlabeled-dataset", folder, *TINY]
    code, out, _ = run_cli(capsys, *argv, "--unlabeled-lm-time", "2s", "--output-dir", tmp_path / "run")
    assert code == 0, out[-2000:]
    record = json.loads((tmp_path / "run" / "eval_results.json").read_text())["unlabeled_lm"]
    assert record["texts"] == 300 and record["source"] == f"dataset {folder}"
    code, _, err = run_cli(
        capsys, "train-classifier", "--train-file", train, *COLUMNS, "--unlabeled-dataset", folder,
        "--unlabeled-file", train, "--output-dir", tmp_path / "both",
    )  # fmt: skip
    assert code == 2 and "give one of them" in err and not (tmp_path / "both").exists()
