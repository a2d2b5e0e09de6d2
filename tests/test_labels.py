"""Classifiers for any label set: the user's CSV / TSV / JSON-lines files or a `datasets` dataset, any text length."""

import csv
import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

import hf_charnn
from hf_charnn.cli import main
from hf_charnn.data.labeled import stratified_split

WORDS = "the cat sat on a mat with some kind of person who sits there and reads".split()
TINY = ["--embedding-size", "8", "--hidden-size", "24", "--batch-size", "32", "--no-progress-bar"]


def sentence(rng: random.Random, kind: str) -> str:
    """A text whose label shows in its characters: case and the final punctuation (lengths 8 to ~60)."""
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
    return {"question": text.capitalize() + "?", "shout": text.upper() + "!", "plain": text.capitalize() + "."}[kind]


def write_csv(path, rows, header=("sentence", "kind"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def labeled_rows(count: int, seed: int, kinds=("question", "shout", "plain")) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(sentence(rng, kind), kind) for kind in (rng.choice(kinds) for _ in range(count))]


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-label classifier trained through the CLI on CSV files with their own column names."""
    folder = tmp_path_factory.mktemp("labels")
    train = write_csv(folder / "train.csv", labeled_rows(600, 0))
    validation = write_csv(folder / "val.csv", labeled_rows(90, 1))
    test = write_csv(folder / "test.csv", labeled_rows(90, 2))
    code = main(
        [
            str(arg)
            for arg in (
                "train-classifier",
                "--train-file",
                train,
                "--validation-file",
                validation,
                "--test-file",
                test,
                "--text-column",
                "sentence",
                "--label-column",
                "kind",
                "--output-dir",
                folder / "model",
                "--epochs",
                "4",
                *TINY,
            )
        ]
    )
    assert code == 0
    return folder


def test_labels_from_the_data_become_id2label_and_the_run_reports_every_metric(trained):
    model_dir = trained / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "plain", "1": "question", "2": "shout"}  # sorted names
    assert config["vocab_kind"] == "chars"  # case and punctuation: not text8
    results = json.loads((model_dir / "eval_results.json").read_text())
    for split in ("results", "test_results"):
        scored = results[split]
        assert scored["accuracy"] >= 90, scored  # the label is in the characters: a small GRU learns it in 4 epochs
        assert set(scored["per_label"]) == {"plain", "question", "shout"}
        matrix = np.array(scored["confusion_matrix"]["matrix"])
        assert matrix.sum() == scored["total"] == 90 and np.trace(matrix) == scored["correct"]
        assert 0 < scored["macro_f1"] <= 100
    assert (model_dir / "confusion_matrix.png").stat().st_size > 1000
    card = (model_dir / "README.md").read_text()
    assert (
        "confusion_matrix.png" in card and "macro-F1" in card and "| `shout` |" in card and "prefix_labels" not in card
    )


def test_pipeline_returns_label_names_and_every_probability(trained):
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(trained / "model"))
    best = classify("WHO SITS THERE!")[0]
    assert best["label"] in {"plain", "question", "shout"}
    every = classify("Who sits there?", top_k=None)
    assert sorted(entry["label"] for entry in every) == ["plain", "question", "shout"]
    assert sum(entry["score"] for entry in every) == pytest.approx(1.0, abs=1e-5)


def test_evaluate_classifier_on_a_file_matches_the_run(trained, capsys, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "evaluate-classifier",
        trained / "model",
        "--file",
        trained / "test.csv",
        "--text-column",
        "sentence",
        "--label-column",
        "kind",
        "--confusion-matrix",
        tmp_path / "cm.png",
    )
    assert code == 0
    result = json.loads(out)
    expected = json.loads((trained / "model" / "eval_results.json").read_text())["test_results"]
    assert result["confusion_matrix"] == expected["confusion_matrix"] and result["macro_f1"] == pytest.approx(
        expected["macro_f1"]
    )
    assert (tmp_path / "cm.png").is_file()


@pytest.mark.slow
def test_a_labeled_classifier_loads_as_remote_code_in_a_pipeline(trained):
    script = (
        "import sys; sys.modules['hf_charnn'] = None\n"
        "from transformers import pipeline\n"
        f"classify = pipeline('text-classification', model={str(trained / 'model')!r}, trust_remote_code=True)\n"
        "print(classify(['A CAT SAT!', 'The mat?'])[0]['label'], type(classify.model).__module__.split('.')[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT.parent
    )
    assert result.returncode == 0, result.stderr[-3000:]
    label, module = result.stdout.split()
    local = hf_charnn.CharGRUForSequenceClassification.from_pretrained(trained / "model").eval()
    assert module == "transformers_modules" and label == local.config.id2label[local.predict("A CAT SAT!")]


def test_texts_of_any_length_are_read_without_their_padding(tmp_path):
    torch.manual_seed(0)
    vocabulary = hf_charnn.Vocabulary("chars", " ,.?ABCabc")
    config = hf_charnn.CharGRUConfig(**vocabulary.config_kwargs(), embedding_size=8, hidden_size=16, num_labels=3)
    model = hf_charnn.CharGRUForSequenceClassification(config).eval()
    texts = ["a", "Abc, abc?", "cab " * 40, "B."]
    with torch.no_grad():
        alone = [model(torch.from_numpy(vocabulary.encode(text))[None]).logits[0] for text in texts]
        from hf_charnn.data.labeled import PaddedBatches

        rows = [{"input_ids": torch.from_numpy(vocabulary.encode(text)), "labels": 0} for text in texts]
        batch = PaddedBatches(vocabulary.size)(rows)
        batched = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(batched, torch.stack(alone), atol=1e-5, rtol=1e-5)


def test_jsonl_and_tsv_with_integer_labels_and_a_stratified_split(tmp_path, capsys):
    rng = random.Random(0)
    rows = [
        {"text": sentence(rng, kind), "label": {"question": 10, "shout": 2, "plain": 7}[kind]}
        for kind in (rng.choice(["question", "shout", "plain"]) for _ in range(300))
    ]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = run_cli(
        capsys,
        "train-classifier",
        "--train-file",
        tmp_path / "train.jsonl",
        "--output-dir",
        tmp_path / "jsonl",
        "--epochs",
        "1",
        "--validation-split-percentage",
        "10",
        "--output",
        tmp_path / "jsonl.json",
        *TINY,
    )
    assert code == 0, err
    config = json.loads((tmp_path / "jsonl" / "config.json").read_text())
    assert list(config["id2label"].values()) == ["2", "7", "10"]  # integers sorted as numbers
    support = json.loads((tmp_path / "jsonl.json").read_text())["results"]["per_label"]
    counts = {str(label): sum(row["label"] == label for row in rows) for label in (2, 7, 10)}
    assert {name: scores["support"] for name, scores in support.items()} == {
        name: round(count * 0.1) for name, count in counts.items()
    }
    write_csv(
        tmp_path / "train.tsv", [(row["text"], row["label"]) for row in rows], header=("text", "label"), delimiter="\t"
    )
    code, _, err = run_cli(
        capsys,
        "train-classifier",
        "--train-file",
        tmp_path / "train.tsv",
        "--output-dir",
        tmp_path / "tsv",
        "--epochs",
        "1",
        "--vocab",
        "bytes",
        *TINY,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "tsv" / "config.json").read_text())["vocab_kind"] == "bytes"


def test_stratified_split_holds_out_each_label_and_is_repeatable():
    labels = [0] * 50 + [1] * 20 + [2] * 3 + [3]
    train, validation = stratified_split(labels, 10, seed=1)
    assert sorted(train + validation) == list(range(len(labels)))
    held = [labels[row] for row in validation]
    assert [held.count(label) for label in range(4)] == [
        5,
        2,
        1,
        0,
    ]  # at least one where a label has two; none of a single one
    assert stratified_split(labels, 10, seed=1) == (train, validation) and stratified_split(labels, 10, seed=2) != (
        train,
        validation,
    )


def test_a_datasets_dataset_with_class_label_names(tmp_path, capsys):
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features(
        {"review": Value("string"), "stars": ClassLabel(names=["neg", "pos"])}
    )  # names in their own order
    folder = tmp_path / "reviews"
    folder.mkdir()
    rng = random.Random(0)
    for split, count in (("train", 200), ("validation", 40)):
        kinds = [rng.choice(["shout", "plain"]) for _ in range(count)]
        Dataset.from_dict(
            {"review": [sentence(rng, kind) for kind in kinds], "stars": [int(kind == "plain") for kind in kinds]},
            features=features,
        ).to_parquet(str(folder / f"{split}.parquet"))
    code, out, err = run_cli(
        capsys,
        "train-classifier",
        "--dataset-name",
        folder,
        "--text-column",
        "review",
        "--label-column",
        "stars",
        "--output-dir",
        tmp_path / "model",
        "--epochs",
        "1",
        "--output",
        tmp_path / "summary.json",
        *TINY,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "model" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}
    assert json.loads((tmp_path / "summary.json").read_text())["results"]["total"] == 40


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing column", "no column 'kind' (columns: sentence, label); pass --label-column"),
        ("empty text", "row 3: empty text in column 'sentence'"),
        ("label only in validation", "label 'whisper' does not appear in the training data"),
        (
            "single class",
            "every training example has the label 'plain'; a classifier needs examples of at least two labels",
        ),
        ("unknown format", "unknown format '.xlsx'"),
        ("text8 asked for", "is not one of the 27 text8 symbols"),
    ],
)
def test_bad_labeled_data_gives_one_line_and_exit_2(tmp_path, capsys, case, message):
    rows = labeled_rows(40, 0)
    train, validation, extra = tmp_path / "train.csv", tmp_path / "val.csv", []
    if case == "missing column":
        write_csv(train, rows, header=("sentence", "label"))
    elif case == "empty text":
        write_csv(train, rows[:2] + [("", "plain")] + rows[2:])
    elif case == "label only in validation":
        write_csv(train, rows)
        write_csv(validation, rows[:5] + [("psst", "whisper")])
        extra = ["--validation-file", validation]
    elif case == "single class":
        write_csv(train, [(text, "plain") for text, _ in rows])
    elif case == "unknown format":
        train = tmp_path / "train.xlsx"
        train.write_text("x")
    else:
        write_csv(train, rows)
        extra = ["--vocab", "text8"]
    code, out, err = run_cli(
        capsys,
        "train-classifier",
        "--train-file",
        train,
        "--text-column",
        "sentence",
        "--label-column",
        "kind",
        "--output-dir",
        tmp_path / "out",
        *extra,
        *TINY,
    )
    assert code == 2 and "{" not in out  # no summary
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # nothing partial left behind


def test_exercise_only_recipes_are_refused_with_own_labels(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", labeled_rows(20, 0))
    code, _, err = run_cli(
        capsys, "train-classifier", "--train-file", train, "--preset", "lm-transfer", "--output-dir", tmp_path / "o"
    )
    assert (
        code == 2
        and err.count("\n") == 1
        and "--transfer-from-lm, --holdout-examples: only for the vowel/consonant exercise data" in err
    )
    assert not (tmp_path / "o").exists()  # refused before the recipe's LM trained


def test_the_demo_classify_tab_for_any_classifier(trained, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    from conftest import free_port
    from gradio_client import Client
    from transformers import pipeline

    from hf_charnn import demo
    from hf_charnn.models.auto import load_model

    classifier = load_model(trained / "model", "classifier")
    result = demo.classify(classifier, "Who sits there?")
    expected = {
        entry["label"]: entry["score"]
        for entry in pipeline("text-classification", model=str(trained / "model"))("Who sits there?", top_k=None)
    }
    assert dict(result["labels"]) == pytest.approx(expected, abs=1e-5)
    assert result["labels"][0][1] == max(expected.values())  # most likely first
    unseen = demo.classify(classifier, "Who sits thére? ✓")  # characters the model never saw are left out, with a note
    assert unseen["text"] == "Who sits thre? " and "Left out 2 of 17 characters" in unseen["note"]
    # A classifier alone: only the Classify tab, served and called through gradio's client.
    app = demo.build_demo(None, classifier, title="classifier demo")
    from hf_charnn.models.auto import is_classifier_folder

    assert is_classifier_folder(trained / "model") and not is_classifier_folder(tmp_path)  # `hf-charnn demo CLASSIFIER`
    assert (
        "Classify" in str(app.config) and "Write" not in str(app.config) and "Vowel or consonant" not in str(app.config)
    )
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        summary, bars = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "Who sits there?", api_name="/classify"
        )
    finally:
        app.close()
    assert summary.startswith(f"**{result['labels'][0][0]}**") and bars.count("hf-charnn-label") == 3


def test_a_labeled_run_resumes_to_the_same_result_and_refuses_other_data(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", labeled_rows(200, 0))
    # (checkpoints every 2 steps, between the epoch-end metric rows: the saved counters are plain numbers)
    common = [
        "train-classifier",
        "--train-file",
        train,
        "--text-column",
        "sentence",
        "--label-column",
        "kind",
        "--epochs",
        "3",
        "--save-steps",
        "2",
        "--mixed-precision",
        "no",
        *TINY,
    ]

    def rows(folder):
        return [
            {key: value for key, value in json.loads(line).items() if "second" not in key}
            for line in (folder / "metrics.jsonl").read_text().splitlines()
        ]

    assert run_cli(capsys, *common, "--output-dir", tmp_path / "whole")[0] == 0
    assert run_cli(capsys, *common, "--output-dir", tmp_path / "parts", "--stop-after-epoch", "1")[0] == 0
    assert run_cli(capsys, *common, "--output-dir", tmp_path / "parts", "--resume-from", "latest")[0] == 0
    # (no preset: the recipe sized to the data validates once an epoch, in batches grouped by length)
    assert rows(tmp_path / "parts") == rows(tmp_path / "whole") and len(rows(tmp_path / "whole")) == 3
    write_csv(train, labeled_rows(200, 1))  # other texts under the same name
    code, _, err = run_cli(capsys, *common, "--output-dir", tmp_path / "parts", "--resume-from", "latest")
    assert code == 2 and "cannot resume" in err and "train" in err


CLASSIFIER_SPACE_CHECK = """import sys; sys.modules['hf_charnn'] = None
import importlib.util, json
spec = importlib.util.spec_from_file_location("space_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
model, classifier = app.load_models(app.MODEL_ID, app.CLASSIFIER_ID, revision=app.MODEL_REVISION,
                                    classifier_revision=app.CLASSIFIER_REVISION)
blocks = app.build_demo(model, classifier)
print(json.dumps([model is None, type(classifier).__module__.split(".")[0], app.classify(classifier, "Who sits there?")["labels"],  # noqa: E501
                  "Classify" in str(blocks.config)]))
"""


@pytest.mark.slow
def test_push_a_labeled_classifier_with_its_space(trained, tmp_path):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    from hub_server import LocalHub
    from test_hub import TOKEN, hub_env, push, run

    from hf_charnn import demo
    from hf_charnn.models.auto import load_model

    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint)
        result = push(trained / "model", "alice/kinds", env, "--token", TOKEN, "--space", "alice/kinds-demo")
        assert result.returncode == 0, result.stderr[-3000:]
        files = hub.state.repos["alice/kinds"]["files"]
        assert files["confusion_matrix.png"][:4] == b"\x89PNG" and 'model="alice/kinds"' in files["README.md"].decode()
        app = hub.state.spaces["alice/kinds-demo"]["files"]["app.py"]
        assert b"MODEL_ID = None" in app and b"CLASSIFIER_ID = 'alice/kinds'" in app
        (tmp_path / "app.py").write_bytes(app)
        loaded = run([sys.executable, "-c", CLASSIFIER_SPACE_CHECK, str(tmp_path / "app.py")], env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    no_model, module, labels, has_tab = json.loads(loaded.stdout.strip().splitlines()[-1])
    expected = demo.classify(load_model(trained / "model", "classifier"), "Who sits there?")["labels"]
    assert no_model and module == "transformers_modules" and has_tab
    assert [name for name, _ in labels] == [name for name, _ in expected]
    assert [p for _, p in labels] == pytest.approx([p for _, p in expected], abs=1e-5)


def test_evaluate_classifier_asks_for_a_file_for_other_labels(trained, capsys):
    code, _, err = run_cli(capsys, "evaluate-classifier", trained / "model")
    assert code == 2 and "classifies into plain, question, shout, not vowel/consonant: pass --file" in err
    code, _, err = run_cli(capsys, "evaluate-classifier", trained / "model", "--file", trained / "test.csv")
    assert code == 2 and "no column 'text' (columns: sentence, kind); pass --text-column" in err


def test_how_often_a_run_validates_does_not_change_what_it_trains(tmp_path, capsys):
    """Each pass over the validation loader draws a seed from its own generator, not the dropout masks' global one."""
    from safetensors.torch import load_file

    train = write_csv(tmp_path / "train.csv", labeled_rows(120, 0))
    validation = write_csv(tmp_path / "val.csv", labeled_rows(30, 1))
    weights = []
    for every in ("1", "1000"):
        argv = ["train-classifier", "--train-file", train, "--validation-file", validation, "--text-column", "sentence"]
        argv += ["--label-column", "kind", "--epochs", "2", "--eval-steps", every, "--dropout", "0.3", *TINY]
        assert run_cli(capsys, *argv, "--output-dir", tmp_path / every)[0] == 0
        weights.append(load_file(tmp_path / every / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
