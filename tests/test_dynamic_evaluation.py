"""Dynamic evaluation: causal, weight-preserving, deterministic, static at lr 0; statistics travel with the model."""

import json

import numpy as np
import pytest
import torch

from hf_charnn import CharGRUConfig, CharGRUForCausalLM
from hf_charnn.cli import main
from hf_charnn.dynamic_evaluation import (
    STATS_FILE,
    dynamic_log_prob,
    dynamic_log_probs,
    gradient_statistics,
    load_statistics,
    save_statistics,
)

TEXT = "the king speaks to the citizens of rome and the citizens answer the king " * 6


@pytest.fixture(scope="module")
def lm_and_stats():
    torch.manual_seed(0)
    model = CharGRUForCausalLM(CharGRUConfig(embedding_size=8, hidden_size=16, num_hidden_layers=2, dropout=0.2)).eval()
    return model, gradient_statistics(model, TEXT * 3, segment=16, streams=4)


def test_a_symbol_never_depends_on_itself_or_what_follows(lm_and_stats):
    model, stats = lm_and_stats
    text = TEXT[:200]
    for position in (5, 47, 120):  # inside a segment, at a segment boundary (segment 20, start symbol first), later
        changed = text[:position] + ("z" if text[position] != "z" else "q") + text[position + 1 :]
        before = dynamic_log_probs(model, text, stats, lr=1e-2)
        after = dynamic_log_probs(model, changed, stats, lr=1e-2)
        assert np.array_equal(before[:position], after[:position])  # bit-identical
        assert not np.array_equal(before[position:], after[position:])


def test_the_weights_are_the_same_afterwards_and_the_score_repeats(lm_and_stats):
    model, stats = lm_and_stats
    weights = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    first = dynamic_log_prob(model, TEXT, stats, lr=1e-2, decay=1e-2)
    assert all(torch.equal(weights[name], parameter) for name, parameter in model.named_parameters())
    assert dynamic_log_prob(model, TEXT, stats, lr=1e-2, decay=1e-2) == first
    assert first != pytest.approx(model.score_long_text(TEXT), abs=1e-3)  # it did adapt


def test_lr_zero_is_the_static_score(lm_and_stats):
    model, stats = lm_and_stats
    assert dynamic_log_prob(model, TEXT, stats, lr=0.0) == pytest.approx(model.score_long_text(TEXT), abs=1e-3)


def test_statistics_are_saved_by_training_and_used_by_evaluate_lm(tmp_path, capsys):
    (tmp_path / "train.txt").write_text(TEXT * 20)
    (tmp_path / "valid.txt").write_text(TEXT[:400])
    (tmp_path / "tune.txt").write_text(TEXT[100:300])
    run = tmp_path / "run"
    args = [
        "train-lm",
        "--train-file",
        str(tmp_path / "train.txt"),
        "--validation-file",
        str(tmp_path / "valid.txt"),
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--batch-size",
        "4",
        "--chunk-size",
        "16",
        "--max-steps",
        "4",
        "--output-dir",
        str(run),
        "--no-progress-bar",
        "--mixed-precision",
        "no",
    ]
    assert main(args) == 0
    summary = json.loads((run / "eval_results.json").read_text())
    dynamic = summary["dynamic"]  # a separate block: never mixed with the static results
    assert (
        set(dynamic) >= {"loss", "bpc", "lr", "decay", "segment", "statistics_from"}
        and "dynamic" not in summary["results"]
    )
    assert "training text" in dynamic["statistics_from"] and (run / STATS_FILE).is_file()
    assert "dynamic evaluation" in (run / "README.md").read_text()
    capsys.readouterr()
    score = ["evaluate-lm", str(run), "--text", str(tmp_path / "valid.txt"), "--dynamic"]
    assert main(score) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dynamic"]["loss"] == pytest.approx(dynamic["loss"], abs=1e-6) and "sane" in result  # a text8 model
    assert main([*score, "--dynamic-lr", "0"]) == 0
    static = json.loads(capsys.readouterr().out)
    assert static["dynamic"]["perplexity"] == pytest.approx(static["perplexity"], rel=1e-4)
    assert main([*score, "--dynamic-tune-on", str(tmp_path / "tune.txt")]) == 0
    tuned = json.loads(capsys.readouterr().out)["dynamic"]
    assert len(tuned["tuned_on"]["grid"]) == 9 and (tuned["lr"], tuned["decay"]) in {
        (g["lr"], g["decay"]) for g in tuned["tuned_on"]["grid"]
    }
    # Bad input: one line, exit 2.
    assert main([*score, "--dynamic-tune-on", str(tmp_path / "valid.txt")]) == 2
    assert "must not be the text it scores" in capsys.readouterr().err
    (run / STATS_FILE).unlink()
    assert main(score) == 2
    assert "--dynamic-stats-from TRAINING_TEXT" in capsys.readouterr().err
    assert main([*score, "--dynamic-stats-from", str(tmp_path / "train.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["dynamic"]["statistics_from"] == str(tmp_path / "train.txt")


def test_statistics_round_trip(tmp_path, lm_and_stats):
    model, stats = lm_and_stats
    save_statistics(stats, tmp_path, "somewhere")
    loaded, source = load_statistics(tmp_path)
    assert source == "somewhere" and all(torch.equal(loaded[name], stats[name]) for name in stats)
    assert load_statistics(tmp_path / "nothing") is None
