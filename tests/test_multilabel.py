"""Issue 27, part 3: multi-label classification (a set of labels a text, a sigmoid a label, thresholds tuned)."""

import json
import random

import numpy as np
import pytest
import torch
from test_labels import run_cli
from test_ngrams import ngram_model, reference_buckets

import hf_charnn
from hf_charnn.evaluation import multi_label_report

ANIMALS, COLOURS, FILLER = (
    ["cat", "dog", "owl", "fox"],
    ["red", "blue", "green"],
    ["the", "and", "a", "of", "big", "sat"],
)


def tagged_sentence(rng: random.Random) -> tuple[str, list[str]]:
    """Words with any of: an animal, a colour, a number; a text's labels say which (at least one)."""
    while True:
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        labels = []
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), rng.choice(ANIMALS))
            labels.append("animal")
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), rng.choice(COLOURS))
            labels.append("colour")
        if rng.random() < 0.4:
            words.insert(rng.randrange(len(words)), str(rng.randint(2, 99)))
            labels.append("number")
        if labels:
            return " ".join(words), labels


def write_jsonl(path, count: int, seed: int):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(count):
            text, labels = tagged_sentence(rng)
            handle.write(json.dumps({"text": text, "label": labels}) + "\n")
    return path


def write_separated(path, count: int, seed: int, separator: str = "|"):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        for _ in range(count):
            text, labels = tagged_sentence(rng)
            handle.write(f"{text},{separator.join(labels)}\n")
    return path


TINY = ["--embedding-size", "8", "--hidden-size", "16", "--ngram-buckets", "1024", "--epochs", "3", "--no-progress-bar"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A multi-label classifier trained through the CLI on JSON lines whose label column holds lists."""
    folder = tmp_path_factory.mktemp("multilabel")
    files = {
        split: write_jsonl(folder / f"{split}.jsonl", n, seed)
        for split, n, seed in [("train", 300, 0), ("validation", 80, 1), ("test", 80, 2)]
    }
    argv = ["train-classifier", "--train-file", files["train"], "--validation-file", files["validation"]]
    argv += ["--test-file", files["test"], *TINY, "--output-dir", folder / "run"]
    code = hf_charnn.cli.main([str(arg) for arg in argv])
    assert code in (0, None)
    return folder


def test_a_label_column_of_lists_trains_a_multi_label_model_with_tuned_thresholds(trained):
    config = json.loads((trained / "run" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert [config["id2label"][str(index)] for index in range(3)] == ["animal", "colour", "number"]
    thresholds = config["label_thresholds"]
    assert len(thresholds) == 3 and all(0 < value < 1 for value in thresholds)
    summary = json.loads((trained / "run" / "eval_results.json").read_text())
    chosen = summary["ngram_linear"]["chosen"]
    assert chosen["thresholds"] == thresholds
    for key in ("micro_f1", "macro_f1", "exact_match", "per_label"):
        assert key in summary["results"] and key in summary["test_results"]
    assert summary["results"]["micro_f1"] == pytest.approx(chosen["micro_f1"])
    assert summary["test_results"]["micro_f1"] > 90  # the words that decide are plain n-grams
    card = (trained / "run" / "README.md").read_text()
    assert "micro-F1" in card and "exact match" in card and "label_thresholds" in card
    assert "name: Micro F1" in card  # the model-index metadata


def test_the_pipeline_returns_every_labels_sigmoid_and_predict_applies_the_thresholds(trained):
    from transformers import pipeline

    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(trained / "run").eval()
    texts = ["the red cat sat", "a 42 and of", "the big of"]
    classify = pipeline("text-classification", model=str(trained / "run"), top_k=None)
    scores = [{item["label"]: item["score"] for item in row} for row in classify(texts)]
    labels = [model.config.id2label[index] for index in range(3)]
    from_pipeline = np.array([[row[label] for label in labels] for row in scores])
    with torch.no_grad():
        ids, mask = hf_charnn.models.modeling_char_gru.pad_ids(
            [model.vocabulary.encode(text) for text in texts], model.config.vocab_size
        )
        logits = model(ids, attention_mask=mask).logits
    np.testing.assert_allclose(from_pipeline, torch.sigmoid(logits).numpy(), atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(texts), from_pipeline, atol=1e-6)
    assert not np.allclose(from_pipeline.sum(axis=1), 1.0)  # a sigmoid each, not one softmax
    thresholds = np.asarray(model.config.label_thresholds)
    expected = [np.flatnonzero(row >= thresholds).tolist() for row in from_pipeline]
    assert model.predict_batch(texts) == expected
    assert "animal" in [labels[i] for i in expected[0]] and "colour" in [labels[i] for i in expected[0]]


def test_separated_cells_read_as_lists_do_and_evaluate_classifier_scores_them(trained, tmp_path, capsys):
    csv_file = write_separated(tmp_path / "test.csv", 80, 2)
    code, out, _ = run_cli(capsys, "evaluate-classifier", trained / "run", "--file", csv_file, "--label-separator", "|")
    from_csv = json.loads(out)
    code_jsonl, out_jsonl, _ = run_cli(capsys, "evaluate-classifier", trained / "run", "--file", trained / "test.jsonl")
    assert code == code_jsonl == 0 and from_csv == json.loads(out_jsonl)
    summary = json.loads((trained / "run" / "eval_results.json").read_text())
    assert from_csv["micro_f1"] == pytest.approx(summary["test_results"]["micro_f1"])
    code, _, err = run_cli(
        capsys, "evaluate-classifier", trained / "run", "--file", csv_file, "--label-separator", "|",
        "--confusion-matrix", tmp_path / "m.png",
    )  # fmt: skip
    assert code == 2 and "multi-label" in err and "Traceback" not in err and not (tmp_path / "m.png").exists()


def test_the_onnx_export_of_a_multi_label_model_scores_as_pytorch(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    argv = ["export", trained / "run", "--onnx", "--output", tmp_path / "out", "--file", trained / "test.jsonl"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    result = json.loads(out)
    assert result["largest_difference"]["fp32"] < 1e-4
    scores = result["scores"]["micro_f1"]
    assert scores["fp32"] == scores["torch"] > 90


def test_separated_cells_and_json_lists_train_the_same_model(tmp_path, capsys):
    """The same rows as CSV cells `a|b` with --label-separator or as JSON lists: the same labels, the same figures."""
    results = {}
    for suffix, write, flags in (("jsonl", write_jsonl, []), ("csv", write_separated, ["--label-separator", "|"])):
        train = write(tmp_path / f"train.{suffix}", 120, 5)
        validation = write(tmp_path / f"validation.{suffix}", 40, 6)
        argv = ["train-classifier", "--train-file", train, "--validation-file", validation, *flags, *TINY]
        code, out, _ = run_cli(capsys, *argv, "--epochs", "1", "--output-dir", tmp_path / suffix)
        assert code == 0 and "labels (multi-label): animal, colour, number" in out
        results[suffix] = json.loads((tmp_path / suffix / "eval_results.json").read_text())["results"]
    assert results["csv"] == results["jsonl"]


def test_multi_label_forced_on_single_labels_and_its_errors(tmp_path, capsys):
    rows = [f"{text},{labels[0]}" for text, labels in (tagged_sentence(random.Random(i)) for i in range(60))]
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "\n".join(rows) + "\n")
    code, out, _ = run_cli(
        capsys, "train-classifier", "--train-file", train, "--multi-label", *TINY, "--epochs", "1",
        "--output-dir", tmp_path / "forced",
    )  # fmt: skip
    assert code == 0 and "(multi-label)" in out
    assert json.loads((tmp_path / "forced" / "config.json").read_text())["problem_type"] == "multi_label_classification"

    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": "a cat", "label": ["animal"]}) + "\n" + json.dumps({"text": "x", "label": []}))
    cases = {
        "an empty label set": (["--train-file", empty], "empty.jsonl, row 2: an empty label set in column 'label'"),
        "an empty cell part": (
            [
                "--train-file",
                _write(tmp_path / "bars.csv", "text,label\na cat,animal\nthe,|\n"),
                "--label-separator",
                "|",
            ],
            "bars.csv, row 2: an empty label set",
        ),
        "a blank separator": (
            ["--train-file", train, "--label-separator", " "],
            "--label-separator ' ': give a visible",
        ),
        "class weights": (
            ["--train-file", train, "--multi-label", "--class-weight", "balanced"],
            "--class-weight balanced: weighs one label against the others",
        ),
    }
    for name, (flags, expected) in cases.items():
        out_dir = tmp_path / name.replace(" ", "_")
        code, _, err = run_cli(capsys, "train-classifier", *flags, "--output-dir", out_dir)
        assert code == 2, name
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not out_dir.exists(), name  # nothing created


def _write(path, text: str):
    path.write_text(text)
    return path


def test_multi_label_report_agrees_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    gold = rng.random((200, 5)) < 0.3
    predicted = gold ^ (rng.random((200, 5)) < 0.15)
    report = multi_label_report(gold.astype(int), predicted, list("abcde"))
    assert report["micro_f1"] == pytest.approx(100 * f1_score(gold, predicted, average="micro"))
    assert report["macro_f1"] == pytest.approx(100 * f1_score(gold, predicted, average="macro"))
    assert report["exact_match"] == pytest.approx(100 * accuracy_score(gold, predicted))
    per_label = f1_score(gold, predicted, average=None)
    assert [report["per_label"][name]["f1"] for name in "abcde"] == pytest.approx(100 * per_label)
    as_lists = [np.flatnonzero(row).tolist() for row in gold], [np.flatnonzero(row).tolist() for row in predicted]
    assert multi_label_report(*as_lists, list("abcde")) == report


def test_each_labels_threshold_is_its_best_f1_on_validation_ties_nearest_one_half():
    from hf_charnn.training.linear import THRESHOLDS, tune_thresholds

    gold = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    probabilities = np.array([[0.3, 0.9, 0.2], [0.25, 0.1, 0.4], [0.1, 0.62, 0.1], [0.05, 0.5, 0.3]])
    thresholds = tune_thresholds(probabilities, gold)
    # Label 0: any threshold in (0.1, 0.25] keeps both positives and drops the rest: the one nearest 0.5 is 0.25.
    # Label 1: above 0.62 only the wrong 0.9 is left; at 0.55-0.6 the right 0.62 and the wrong 0.9: best F1 (2/3)
    # nearest 0.5 is 0.55. Label 2 has no positives: every threshold scores 0, so 0.5.
    assert thresholds == [0.25, 0.55, 0.5]
    for label, threshold in enumerate(thresholds):

        def f1(value, label=label):
            return multi_label_report(gold[:, [label]], probabilities[:, [label]] >= value, ["x"])["micro_f1"]

        assert f1(threshold) == max(f1(value) for value in THRESHOLDS)


def test_the_multi_label_linear_part_is_one_vs_rest_linear_svc_on_the_same_features():
    """Per label, the model's linear scores are scikit-learn's OneVsRestClassifier(LinearSVC) decision values."""
    from scipy.sparse import csr_matrix
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    from hf_charnn.evaluation import label_matrix
    from hf_charnn.models.modeling_char_gru import pad_ids
    from hf_charnn.training.linear import SVM_C, fit_ngram_linear

    rng = random.Random(3)
    samples = [tagged_sentence(rng) for _ in range(200)]
    names = ["animal", "colour", "number"]
    model = ngram_model(ngram_linear=True, problem_type="multi_label_classification")
    rows = [model.vocabulary.encode(hf_charnn.normalize_text(text)) for text, _ in samples]
    label_sets = [sorted(names.index(label) for label in labels) for _, labels in samples]
    fit = fit_ngram_linear(model, rows, label_sets)
    assert fit["rows"] == 200 and fit["train_accuracy"] > 90
    boundary, buckets = model.config.vocab_size + 1, model.config.ngram_buckets
    counts = np.zeros((len(rows), buckets))
    for index, row in enumerate(rows):
        np.add.at(counts[index], reference_buckets(row.tolist(), 1, 4, buckets, boundary), 1)
    idf = np.log((1 + len(rows)) / (1 + (counts > 0).sum(0))) + 1
    features = csr_matrix(counts * idf / np.sqrt((counts * idf**2).sum(1, keepdims=True)))
    svm = OneVsRestClassifier(LinearSVC(C=SVM_C, tol=1e-8, max_iter=100_000, random_state=0))
    svm.fit(features, label_matrix(label_sets, 3).astype(int))
    model.config.recurrent_scale = 0.0
    with torch.no_grad():
        ids, mask = pad_ids(rows, model.config.vocab_size)
        scores = model(ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(scores, svm.decision_function(features), atol=1e-3)
    assert model.predict_batch([hf_charnn.normalize_text(text) for text, _ in samples[:20]]) == [
        np.flatnonzero(row).tolist() for row in svm.predict(features[:20])
    ]


def test_bce_trains_a_multi_label_forward_and_thresholds_are_checked():
    model = ngram_model(problem_type="multi_label_classification")
    ids = torch.randint(0, 27, (4, 9))
    labels = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)
    output = model(ids, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, labels)
    assert float(output.loss.detach()) == pytest.approx(float(expected.detach()))
    with pytest.raises(ValueError, match="one probability between 0 and 1 for each of the 3 labels"):
        hf_charnn.CharGRUConfig(
            num_labels=3, problem_type="multi_label_classification", label_thresholds=[0.5, 1.5, 0.2]
        )
    with pytest.raises(ValueError, match="a multi-label classifier's"):
        hf_charnn.CharGRUConfig(num_labels=2, label_thresholds=[0.5, 0.5])


def test_a_multi_label_model_works_through_remote_code(trained, tmp_path):
    """Loaded without hf_charnn (remote code), the pipeline gives every label's sigmoid, as the model does."""
    from test_recipes import remote_code_pipeline_matches

    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(trained / "run").eval()
    remote_code_pipeline_matches(model, tmp_path / "model", texts=["the red cat sat", "a 42 and of"])


def test_the_demos_classify_tab_shows_each_labels_sigmoid(trained):
    from hf_charnn.demo import classify

    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(trained / "run").eval()
    shown = dict(classify(model, "the red cat sat")["labels"])
    probabilities = model.predict_proba(["the red cat sat"])[0]
    assert shown == pytest.approx({model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)})
    assert sum(shown.values()) != pytest.approx(1.0)
