"""The benchmark scripts' own logic: the hand-written GRU they time must compute what nn.GRU computes."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import kernel_benchmark  # noqa: E402


def test_hand_written_gru_matches_nn_gru():
    torch.manual_seed(0)
    gru = torch.nn.GRU(5, 7, batch_first=True)
    inputs = torch.randn(3, 11, 5)
    weights = (gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0)
    torch.testing.assert_close(kernel_benchmark.scan_gru(inputs, *weights), gru(inputs)[0])


def test_each_variant_times_a_real_training_step():
    shape = ("tiny", "lm", 4, 8, 2, 6, True)
    flops_per_char = kernel_benchmark.TrainingConfig.from_preset(
        "lm", embedding_size=4, hidden_size=8
    ).training_flops_per_char(27)  # the text8 LM's head
    for variant in ("eager", "1 thread", "scan"):
        numbers = kernel_benchmark.time_variant(variant, shape, steps=2)
        # The figures are one step's: 2 x 6 characters in `ms`, at the model's FLOP count per character.
        assert numbers["chars_per_s"] == pytest.approx(2 * 6 / (numbers["ms"] / 1e3))
        assert numbers["gflops"] == pytest.approx(numbers["chars_per_s"] * flops_per_char / 1e9)

    before = torch.get_num_threads()
    kernel_benchmark.time_variant("1 thread", shape, steps=1)
    assert torch.get_num_threads() == before


def test_python_tags_are_the_tokenizers_and_load_as_tagger_rows(tmp_path, monkeypatch):
    """scripts/make_python_tags.py: each span is a token of its kind, cut at the row's edges; the tagger reads them."""
    import json

    import make_python_tags

    source = 'import os  # the OS\nx = 42\ndef f(a):\n    """Doc\n    string."""\n    return a + 1\n'
    spans = {(source[start:end], label) for start, end, label in make_python_tags.token_spans(source)}
    assert ("import", "KEYWORD") in spans and ("os", "NAME") in spans and ("# the OS", "COMMENT") in spans
    assert ("42", "NUMBER") in spans and ('"""Doc\n    string."""', "STRING") in spans and ("def", "KEYWORD") in spans
    monkeypatch.setattr(make_python_tags, "ROW_CHARACTERS", 25)  # the docstring is cut across two rows
    rows = make_python_tags.file_rows(source)
    assert "".join(row["text"] + "\n" for row in rows) == source  # whole lines, in order
    for row in rows:
        assert all(0 <= start < end <= len(row["text"]) for start, end, _ in row["spans"])
    cut = [row["text"][start:end] for row in rows for start, end, label in row["spans"] if label == "STRING"]
    assert cut == ['"""Doc', '    string."""']
    from hf_charnn.training.tasks.tagging.data import read_tagged_file

    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tagged = read_tagged_file(tmp_path / "rows.jsonl", None, 64)
    assert "B-KEYWORD" in tagged.tags[0] and len(tagged.texts) == len(rows)


def test_labels_benchmark_interval_is_paired_and_its_macro_f1_is_scikit_learns():
    import labels_benchmark
    import numpy as np
    from sklearn.metrics import f1_score

    from hf_charnn.evaluation import accuracy_and_macro_f1

    rng = np.random.default_rng(3)
    gold = rng.integers(0, 5, 400)
    predicted = np.where(rng.random(400) < 0.7, gold, rng.integers(0, 6, 400))  # label 5: predicted, never gold
    expected = 100 * f1_score(gold, predicted, average="macro")
    assert accuracy_and_macro_f1(gold, predicted, 6) == pytest.approx((100 * np.mean(gold == predicted), expected))

    names = [f"label {index}" for index in range(6)]
    gold_names, ours = [names[i] for i in gold], [names[i] for i in predicted]
    same = labels_benchmark.paired_interval(gold_names, ours, ours, draws=50)
    assert same == {"accuracy": (0.0, 0.0, 0.0), "macro_f1": (0.0, 0.0, 0.0)}  # paired: identical models never differ
    # Right on 40 more rows of 400: +10 points, an interval well clear of 0; and the same draws give the same interval.
    worse = list(ours)
    fixed = [row for row in range(400) if ours[row] == gold_names[row]][:40]
    for row in fixed:
        worse[row] = names[(gold[row] + 1) % 5]
    interval = labels_benchmark.paired_interval(gold_names, ours, worse, draws=200)
    difference, low, high = interval["accuracy"]
    assert difference == pytest.approx(10.0) and 5.0 < low <= difference <= high < 15.0
    assert interval == labels_benchmark.paired_interval(gold_names, ours, worse, draws=200)
