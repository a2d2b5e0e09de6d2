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
        assert settings["class_weight"] is None and settings["ngram_linear"] is True
        assert settings["metric_for_best_model"] is None and settings["early_stopping_patience"] is None
        metrics = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        results.append((summary, metrics, load_file(tmp_path / run / "model.safetensors")))
    (first, first_rows, first_weights), (second, second_rows, second_weights) = results
    assert first["results"] == second["results"]
    for summary in (first, second):
        summary["ngram_linear"]["fit"].pop("seconds")
    assert first["ngram_linear"] == second["ngram_linear"]
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


# -- the linear n-gram part (an SVM's, fitted first; training/linear.py) ------------------------------------------
def texts_and_labels(rows: list) -> tuple[list, list]:
    kinds = {"question": 0, "shout": 1, "plain": 2}
    return [hf_charnn.normalize_text(text) for text, _ in rows], [kinds[kind] for _, kind in rows]


def fitted_linear_model(texts: list, labels: list, **config):
    from hf_charnn.training.linear import fit_ngram_linear

    model = ngram_model(ngram_linear=True, **config)
    rows = [model.vocabulary.encode(text) for text in texts]
    return model, rows, fit_ngram_linear(model, rows, labels)


def test_the_linear_part_is_the_svm_scikit_learn_fits_on_the_same_features():
    """Counted in plain Python (the reference hash), weighted and fitted by scikit-learn: the model's linear scores."""
    from scipy.sparse import csr_matrix
    from sklearn.svm import LinearSVC

    from hf_charnn.training.linear import SVM_C

    texts, labels = texts_and_labels(labeled_rows(200, 0))
    model, rows, fit = fitted_linear_model(texts, labels)
    assert fit["rows"] == 200 and not any(p.requires_grad for p in model.ngram_linear.parameters())
    boundary, buckets = model.config.vocab_size + 1, model.config.ngram_buckets
    counts = np.zeros((len(rows), buckets))
    for index, row in enumerate(rows):
        np.add.at(counts[index], reference_buckets(row.tolist(), 1, 4, buckets, boundary), 1)
    idf = np.log((1 + len(rows)) / (1 + (counts > 0).sum(0))) + 1
    features = counts * idf / np.sqrt((counts * idf**2).sum(1, keepdims=True))
    svm = LinearSVC(C=SVM_C, tol=1e-8, max_iter=100_000, random_state=0).fit(csr_matrix(features), labels)
    model.config.recurrent_scale = 0.0
    from hf_charnn.models.modeling_char_gru import pad_ids

    with torch.no_grad():
        ids, mask = pad_ids(rows, model.config.vocab_size)
        scores = model(ids, attention_mask=mask).logits.numpy()
    # Both solved to liblinear's tolerance (ours the default, the reference far tighter): equal to 1e-3.
    np.testing.assert_allclose(scores, svm.decision_function(csr_matrix(features)), atol=1e-3)
    np.testing.assert_allclose(model.ngram_linear.idf.numpy(), idf, rtol=1e-6)


def test_a_large_training_set_is_fitted_on_a_seeded_sample_that_keeps_every_label(monkeypatch):
    """Beyond CLASSIFIER_MAX_CHARACTERS the fit reads a random sample of rows (a label-sorted file keeps its labels)."""
    from hf_charnn.training import linear

    texts, labels = texts_and_labels(labeled_rows(300, 0))
    ordered = sorted(zip(labels, texts))  # sorted by label: the first rows hold only label 0
    labels, texts = [label for label, _ in ordered], [text for _, text in ordered]
    monkeypatch.setattr(linear, "CLASSIFIER_MAX_CHARACTERS", sum(len(text) for text in texts) // 3)
    model, rows, fit = fitted_linear_model(texts, labels)
    assert fit["rows_given"] == 300 and fit["characters_given"] == sum(len(row) for row in rows)
    assert fit["characters"] <= linear.CLASSIFIER_MAX_CHARACTERS < fit["characters_given"] and fit["rows"] < 300
    assert fit["train_accuracy"] > 0 and model.ngram_linear.weights.weight.abs().sum(0).min() > 0  # all 3 labels
    again = linear.fit_ngram_linear(model, rows, labels)
    assert (again["rows"], again["characters"]) == (fit["rows"], fit["characters"])  # the same sample, by seed
    other = linear.fit_ngram_linear(model, rows, labels, seed=1)
    assert other["characters"] != fit["characters"] or other["train_accuracy"] != fit["train_accuracy"]
    from hf_charnn.training.tasks.classification.task import mix_words

    chosen = {"recurrent_scale": 1.0, "ngram_linear_scale": 2.0, "accuracy": 90.0}
    card = mix_words({"ngram_linear": {"chosen": chosen, "fit": fit}})
    assert f"fitted by liblinear on a random sample of {fit['rows']:,} of the 300 training texts, C=1" in card


def test_the_primal_solver_takes_over_where_the_dual_has_not_converged(monkeypatch):
    """Both of liblinear's solvers reach the same SVM: past DUAL_ITERATIONS passes, the primal finishes the fit."""
    from hf_charnn.training import linear

    texts, labels = texts_and_labels(labeled_rows(200, 0))
    model, rows, dual = fitted_linear_model(texts, labels)
    dual_scores = model.ngram_linear.weights.weight.detach().clone()
    monkeypatch.setattr(linear, "DUAL_ITERATIONS", 1)
    primal = linear.fit_ngram_linear(model, rows, labels)
    assert (dual["solver"], primal["solver"]) == ("dual", "primal")
    torch.testing.assert_close(model.ngram_linear.weights.weight, dual_scores, atol=2e-3, rtol=0)


@pytest.mark.parametrize("bag", [8, 0])
def test_with_the_linear_part_padded_rows_give_what_each_text_gives_alone_and_onnx_agrees(tmp_path, bag):
    from test_recipes import assert_padded_rows_score_as_alone

    model, _, _ = fitted_linear_model(*texts_and_labels(labeled_rows(120, 0)), ngram_embedding_size=bag)
    assert (model.ngram_bag is None) == (bag == 0)
    model.config.ngram_linear_scale, model.config.recurrent_scale = 4.0, 1.0
    assert_padded_rows_score_as_alone(model)
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from hf_charnn.export import export_onnx, sample_inputs, session_for, torch_outputs

    export_onnx(model, tmp_path / "model.onnx")
    session = session_for(tmp_path / "model.onnx")
    for batch, length in ((1, 1), (3, 9), (4, 60)):
        inputs = sample_inputs(model, batch, length, seed=4)
        np.testing.assert_allclose(session.run(None, inputs)[0], torch_outputs(model, inputs)[0], atol=1e-4, rtol=0)


def test_training_fits_the_linear_part_first_and_weighs_it_on_validation(tmp_path, capsys):
    """The run's saved model scores with the chosen weights; the figures tried are in the summary."""
    files = labeled_files(tmp_path / "data")
    argv = ["train-classifier", "--train-file", files["train"], "--validation-file", files["validation"], *COLUMNS]
    argv += ["--embedding-size", "8", "--hidden-size", "16", "--ngram-buckets", "512", "--epochs", "2"]
    code, out, _ = run_cli(capsys, *argv, "--no-progress-bar", "--output-dir", tmp_path / "run")
    assert code == 0 and "linear n-gram part: fitted on 300 texts" in out and "scores weighed on validation" in out
    summary = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert summary["recipe"]["settings"]["ngram_linear"] is True
    chosen, tried = summary["ngram_linear"]["chosen"], summary["ngram_linear"]["tried"]
    assert chosen in tried and len(tried) == 9
    assert chosen["accuracy"] + chosen["macro_f1"] == max(row["accuracy"] + row["macro_f1"] for row in tried)
    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(tmp_path / "run")
    assert model.config.ngram_linear_scale == chosen["ngram_linear_scale"]
    assert model.config.recurrent_scale == chosen["recurrent_scale"]
    assert summary["results"]["accuracy"] == pytest.approx(chosen["accuracy"])
    assert float(model.ngram_linear.idf.max()) > 1.0  # fitted, and saved with the model
    card = (tmp_path / "run" / "README.md").read_text()
    assert f"{chosen['ngram_linear_scale']:g} x a linear classifier over the same hashed n-grams" in card


def test_the_linear_part_works_through_remote_code_and_pipeline(tmp_path):
    from test_recipes import remote_code_pipeline_matches

    model, _, _ = fitted_linear_model(*texts_and_labels(labeled_rows(120, 0)))
    model.config.ngram_linear_scale, model.config.recurrent_scale = 8.0, 1.0
    remote_code_pipeline_matches(model, tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["ngram_linear"] is True and saved["ngram_linear_scale"] == 8.0


def test_the_linear_part_needs_n_grams(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", labeled_rows(40, 0))
    argv = ["train-classifier", "--train-file", train, *COLUMNS, "--no-ngrams", "--ngram-linear"]
    code, _, err = run_cli(capsys, *argv, "--output-dir", tmp_path / "run")
    assert code == 2 and "--ngram-linear reads the text's n-grams" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="ngram_linear reads"):
        hf_charnn.CharGRUConfig(ngram_linear=True)
