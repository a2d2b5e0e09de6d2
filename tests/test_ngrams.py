"""Issue 25: the n-gram bag beside the GRU, the deterministic default recipe, and logs without progress-bar frames."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from safetensors.torch import load_file
from test_labels import labeled_rows, run_cli, write_csv

import hf_charnn
from hf_charnn.models.modeling_char_gru import NGRAM_HASH_MODULUS, NGRAM_HASH_PRIME, ngram_buckets

COLUMNS = ["--text-column", "sentence", "--label-column", "kind"]
FIXTURES = Path(__file__).parent / "fixtures" / "saved_models"


def labeled_files(folder: Path) -> dict:
    """300 training and 60 validation rows of the three-label sentences (as test_recipes' `files`)."""
    folder.mkdir()
    return {
        "train": write_csv(folder / "train.csv", labeled_rows(300, 0)),
        "validation": write_csv(folder / "val.csv", labeled_rows(60, 1)),
    }


def ngram_model(bidirectional=True, readout="pooled", **config):
    torch.manual_seed(0)
    settings = dict(
        embedding_size=8,
        hidden_size=16,
        num_labels=3,
        bidirectional=bidirectional,
        classifier_readout=readout,
        ngram_range=[1, 4],
        ngram_buckets=997,
        ngram_embedding_size=8,
        dropout=0.3,
    )
    return hf_charnn.CharGRUForSequenceClassification(hf_charnn.CharGRUConfig(**{**settings, **config})).eval()


def reference_buckets(ids: list, smallest: int, largest: int, buckets: int, boundary: int) -> list:
    """The n-grams' buckets of one text as the docstring says, in plain Python (sorted: a bag has no order)."""
    marked = [boundary, *ids, boundary]
    found = []
    for n in range(smallest, largest + 1):
        for start in range(len(marked) - n + 1):
            gram = marked[start : start + n]
            if n == 1 and gram[0] == boundary:
                continue
            value = 0
            for symbol in gram:
                value = (value * NGRAM_HASH_PRIME + symbol + 1) % NGRAM_HASH_MODULUS
            found.append(value % buckets)
    return sorted(found)


def test_the_hash_is_the_documented_one_for_texts_padded_either_side():
    config = ngram_model().config
    rows = [torch.tensor(row) for row in ([0, 1], [5], [3, 3, 3, 3, 3, 3, 26, 2], [26, 0, 7, 11])]
    from test_recipes import left_and_right_padded

    ids, mask, left_ids, left_mask = left_and_right_padded(rows, config.vocab_size)
    for batch_ids, batch_mask in ((ids, mask), (left_ids, left_mask)):
        buckets, valid = ngram_buckets(batch_ids, batch_mask, config)
        for index, row in enumerate(rows):
            ours = sorted(buckets[index][valid[index]].tolist())
            assert ours == reference_buckets(row.tolist(), 1, 4, 997, config.vocab_size + 1)
    # "ab" read as "<ab>": 2 unigrams, 3 bigrams, 2 trigrams, one 4-gram.
    assert int(ngram_buckets(torch.tensor([[0, 1]]), None, config)[1].sum()) == 8


@pytest.mark.parametrize("bidirectional,readout", [(True, "pooled"), (False, "last"), (False, "pooled")])
def test_padded_rows_give_what_each_text_gives_alone(bidirectional, readout):
    from test_recipes import assert_padded_rows_score_as_alone

    model = ngram_model(bidirectional, readout)
    alone = assert_padded_rows_score_as_alone(model)
    rows = [torch.from_numpy(model.vocabulary.encode(text)) for text in ["a", "the cat sat", "on the mat " * 9, "xyz"]]
    # The bag is read: other n-gram rows change the prediction.
    with torch.no_grad():
        model.ngram_bag.embeddings.weight.mul_(100)
        assert not torch.allclose(torch.cat([model(row[None]).logits for row in rows]), alone)


@pytest.mark.parametrize(
    "bidirectional,readout,layers", [(False, "last", 1), (False, "pooled", 1), (True, "pooled", 1), (True, "last", 2)]
)
def test_the_onnx_graph_hashes_and_scores_as_pytorch(tmp_path, bidirectional, readout, layers):
    """One-way and bidirectional (the recipe's) classifiers with a bag: onnxruntime gives PyTorch's logits."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from hf_charnn.export import export_onnx, sample_inputs, session_for, torch_outputs

    model = ngram_model(bidirectional=bidirectional, readout=readout, num_hidden_layers=layers)
    with torch.no_grad():  # rows large enough that a wrong bucket would show
        model.ngram_bag.embeddings.weight.normal_(0, 1)
    export_onnx(model, tmp_path / "model.onnx")
    session = session_for(tmp_path / "model.onnx")
    for batch, length in ((1, 1), (1, 7), (4, 50)):
        inputs = sample_inputs(model, batch, length, seed=3)
        (got,) = session.run(None, inputs)
        (expected,) = torch_outputs(model, inputs)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)

    # The hash alone, exported and run: the same buckets as PyTorch's.
    class Buckets(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            buckets, valid = ngram_buckets(input_ids, attention_mask, model.config)
            return torch.where(valid, buckets, torch.full_like(buckets, -1))

    inputs = sample_inputs(model, 4, 30, seed=5)
    torch.onnx.export(
        Buckets(),
        tuple(torch.from_numpy(value) for value in inputs.values()),
        str(tmp_path / "hash.onnx"),
        input_names=["input_ids", "attention_mask"],
        dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}},
        dynamo=False,
    )
    with torch.no_grad():
        expected = Buckets()(*(torch.from_numpy(value) for value in inputs.values())).numpy()
    other = sample_inputs(model, 3, 41, seed=6)  # another shape than the one traced
    np.testing.assert_array_equal(session_for(tmp_path / "hash.onnx").run(None, inputs)[0], expected)
    with torch.no_grad():
        expected_other = Buckets()(*(torch.from_numpy(value) for value in other.values())).numpy()
    np.testing.assert_array_equal(session_for(tmp_path / "hash.onnx").run(None, other)[0], expected_other)


def test_the_option_works_through_remote_code_and_pipeline(tmp_path):
    from test_recipes import remote_code_pipeline_matches

    remote_code_pipeline_matches(ngram_model(), tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["ngram_range"] == [1, 4] and saved["ngram_buckets"] == 997


def test_folders_saved_without_the_option_load_without_a_bag():
    folder = FIXTURES / "labels-classifier"
    assert "ngram_range" not in json.loads((folder / "config.json").read_text())
    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(folder)
    assert model.config.ngram_range is None and model.ngram_bag is None


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--ngram-range", "4", "1"], "1 <= min <= max"),
        (["--ngram-range", "0", "3"], "1 <= min <= max"),
        (["--ngram-range", "1", "4", "--ngram-buckets", "0"], "at least 1"),
    ],
)
def test_bad_ngram_settings_give_one_line_and_exit_2(tmp_path, capsys, flags, message):
    train = write_csv(tmp_path / "train.csv", labeled_rows(40, 0))
    argv = ["train-classifier", "--train-file", train, *COLUMNS, *flags, "--output-dir", tmp_path / "run"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="min <= max"):
        hf_charnn.CharGRUConfig(ngram_range=[3, 2])


def test_the_default_recipe_trains_the_same_model_twice(tmp_path, capsys):
    """The recipe's schedule comes from the data, its cap only stops: two runs, the same metrics and weights."""
    train = write_csv(tmp_path / "train.csv", labeled_rows(240, 0))
    validation = write_csv(tmp_path / "val.csv", labeled_rows(60, 1))
    results = []
    for run in ("first", "second"):
        argv = ["train-classifier", "--train-file", train, "--validation-file", validation, *COLUMNS]
        argv += ["--embedding-size", "8", "--hidden-size", "16", "--ngram-buckets", "512", "--epochs", "3"]
        code, out, _ = run_cli(capsys, *argv, "--no-progress-bar", "--output-dir", tmp_path / run)
        assert code == 0 and "n-grams" in out
        summary = json.loads((tmp_path / run / "eval_results.json").read_text())
        settings = summary["recipe"]["settings"]
        assert settings["ngram_range"] == [1, 4] and settings["fit_schedule_to_budget"] is False
        assert settings["class_weight"] is None and settings["metric_for_best_model"] == "accuracy"
        metrics = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        results.append((summary, metrics, load_file(tmp_path / run / "model.safetensors")))
    (first, first_rows, first_weights), (second, second_rows, second_weights) = results
    assert first["results"] == second["results"] and first["best"] == second["best"]
    drop = {"train_seconds", "train_chars_per_second"}
    assert [{k: v for k, v in row.items() if k not in drop} for row in first_rows] == [
        {k: v for k, v in row.items() if k not in drop} for row in second_rows
    ]
    assert first_weights.keys() == second_weights.keys()
    for name in first_weights:
        assert torch.equal(first_weights[name], second_weights[name]), name


def test_a_stop_only_budget_stops_without_refitting_the_schedule(tmp_path):
    from test_recipes import classifier_config

    from hf_charnn.training.loop import train

    files = labeled_files(tmp_path / "data")
    config = classifier_config(
        files,
        tmp_path / "run",
        epochs=500,
        max_train_time="2s",
        fit_schedule_to_budget=False,
        lr_schedule="linear",
        warmup_ratio=0.0,
        logging_steps=1,
    )
    summary = train(config)
    assert summary["stopped_by"] == "time budget" and summary["time_budget"]["schedule_fitted"] is False
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    planned = 500 * 19  # 300 rows in batches of 16: the data's schedule, not one fitted to 2 s
    last = rows[-1]
    assert last["step"] < planned / 10
    # Linear decay over the planned steps: at the stop the rate has hardly fallen.
    assert last["learning_rate"] > 0.9 * config.learning_rate


def test_a_log_file_gets_one_line_per_validation_and_no_progress_frames(tmp_path):
    train = write_csv(tmp_path / "train.csv", labeled_rows(120, 0))
    command = [sys.executable, "-m", "hf_charnn", "train-classifier", "--train-file", str(train), *COLUMNS]
    command += ["--embedding-size", "8", "--hidden-size", "16", "--epochs", "2", "--ngram-buckets", "256"]
    command += ["--output-dir", str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "\r" not in log
    validations = [
        line for line in result.stdout.splitlines() if line.startswith("step ") and "validation_accuracy" in line
    ]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(validations) == sum("validation_accuracy" in row for row in metrics) >= 2


def test_the_learning_rate_is_cut_after_validations_without_a_better_one_and_resumes_cut(tmp_path):
    from test_recipes import ScriptedValidation, classifier_config

    from hf_charnn.training.loop import train

    files = labeled_files(tmp_path / "data")
    settings = dict(
        epochs=50, eval_steps=2, save_steps=2, lr_schedule="constant", warmup_ratio=0.0, lr_plateau_patience=1
    )
    ScriptedValidation.SCRIPT = [50.0, 70.0, 65.0, 60.0, 90.0, 55.0]
    first = classifier_config(files, tmp_path / "run", max_steps=6, **settings)
    first.metric_for_best_model = "accuracy"
    task = ScriptedValidation(first)
    task.seen = []
    train(first, task)  # validations at 2, 4, 6: 50, 70 (better), 65 (not: the rate x 0.3)
    resumed = classifier_config(files, tmp_path / "run", resume_from="latest", max_steps=12, **settings)
    resumed.metric_for_best_model = "accuracy"
    task = ScriptedValidation(resumed)
    task.seen = [None] * 3
    train(resumed, task)  # 8: 60 (x 0.3 again), 10: 90 (better), 12: 55 (x 0.3)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = {row["step"]: row["learning_rate"] / first.learning_rate for row in rows}
    assert rates[2] == pytest.approx(1.0) and rates[6] == pytest.approx(1.0)  # cut after the row is written
    assert rates[8] == pytest.approx(0.3) and rates[10] == pytest.approx(0.09) and rates[12] == pytest.approx(0.09)
