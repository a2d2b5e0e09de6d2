"""Issue 20: classifiers for texts of any length, recipes sized to the data, validation-driven training, time budgets,
and transformers' Trainer on saved models."""

import io
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from test_labels import labeled_rows, run_cli, write_csv

import hf_charnn
from hf_charnn.data.labeled import LengthGroupedBatches
from hf_charnn.training import TrainingConfig
from hf_charnn.training.loop import train
from hf_charnn.training.tasks.classification.task import SequenceClassificationTask

TINY = ["--embedding-size", "8", "--hidden-size", "16", "--batch-size", "16", "--no-progress-bar"]
COLUMNS = ["--text-column", "sentence", "--label-column", "kind"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipes")
    return {
        "train": write_csv(folder / "train.csv", labeled_rows(300, 0)),
        "validation": write_csv(folder / "val.csv", labeled_rows(60, 1)),
    }


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("readout", ["last", "pooled"])
def test_bidirectional_and_pooled_classifiers_predict_the_same_padded_and_alone(bidirectional, readout):
    torch.manual_seed(0)
    config = hf_charnn.CharGRUConfig(
        embedding_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_labels=3,
        bidirectional=bidirectional,
        classifier_readout=readout,
    )
    assert_padded_rows_score_as_alone(hf_charnn.CharGRUForSequenceClassification(config).eval())


def left_and_right_padded(rows: list, pad_id: int):
    """(right_ids, right_mask, left_ids, left_mask) of id rows: `pad_ids`, and the same rows shifted to the end (the
    tokenizer pads on the left)."""
    right_ids, right_mask = hf_charnn.models.modeling_char_gru.pad_ids(rows, pad_id)
    width = right_ids.shape[1]
    left_ids, left_mask = torch.full_like(right_ids, pad_id), torch.zeros_like(right_mask)
    for index, row in enumerate(rows):
        left_ids[index, width - len(row) :], left_mask[index, width - len(row) :] = row, 1
    return right_ids, right_mask, left_ids, left_mask


def assert_padded_rows_score_as_alone(model) -> torch.Tensor:
    """Four texts of 1 to 99 characters: padded on the right, on the left and alone, the same logits (returned)."""
    texts = ["a", "the cat sat", "on the mat " * 9, "xyz"]
    rows = [torch.from_numpy(model.vocabulary.encode(text)) for text in texts]
    with torch.no_grad():
        alone = torch.cat([model(row[None]).logits for row in rows])
        right_ids, right_mask, left_ids, left_mask = left_and_right_padded(rows, model.config.vocab_size)
        right = model(right_ids, attention_mask=right_mask).logits
        left = model(left_ids, attention_mask=left_mask).logits
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-5)
    return alone


def test_the_unpacked_padded_path_equals_a_packed_gru():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(1)
    config = hf_charnn.CharGRUConfig(embedding_size=8, hidden_size=16, num_hidden_layers=2, bidirectional=True)
    backbone = hf_charnn.CharGRUModel(config).eval()
    lengths = [5, 9, 2, 9]
    ids, mask = hf_charnn.models.modeling_char_gru.pad_ids([torch.randint(0, 27, (n,)) for n in lengths], 27)
    with torch.no_grad():
        ours = backbone(ids, attention_mask=mask, return_dict=True)
        packed = pack_padded_sequence(backbone.embeddings(ids), torch.tensor(lengths), True, enforce_sorted=False)
        hidden, state = backbone.gru(packed)
        hidden = pad_packed_sequence(hidden, batch_first=True, total_length=9)[0]
    torch.testing.assert_close(ours.last_hidden_state, hidden, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours.state, state, atol=1e-6, rtol=1e-6)


def remote_code_pipeline_matches(model, folder, texts=("the cat", "a much longer text than the other one")):
    """Save `model` into `folder`, classify `texts` there through remote code (hf_charnn unimportable) and the
    pipeline, and check the probabilities against the model's own (each label's sigmoid for a multi-label one)."""
    model.save_pretrained(folder)
    hf_charnn.CharTokenizer.for_model(model.config).save_pretrained(folder)
    texts = list(texts)
    script = (
        "import sys, json; sys.modules['hf_charnn'] = None\n"
        "from transformers import pipeline\n"
        f"classify = pipeline('text-classification', model={str(folder)!r}, trust_remote_code=True, top_k=None)\n"
        f"out = classify({texts!r})\n"
        "print(json.dumps([[round(x['score'], 6) for x in sorted(row, key=lambda x: x['label'])] for row in out]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.array(json.loads(result.stdout)), model.predict_proba(texts), atol=1e-5)


def test_a_bidirectional_pooled_classifier_loads_as_remote_code_in_a_pipeline(tmp_path):
    torch.manual_seed(0)
    config = hf_charnn.CharGRUConfig(
        embedding_size=8, hidden_size=16, num_labels=2, bidirectional=True, classifier_readout="pooled"
    )
    remote_code_pipeline_matches(hf_charnn.CharGRUForSequenceClassification(config).eval(), tmp_path / "model")


def test_length_grouped_batches_are_reproducible_cover_every_row_and_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000)
    sampler = LengthGroupedBatches(lengths, batch_size=32, seed=7)
    sampler.set_epoch(3)
    first = list(sampler)
    again = LengthGroupedBatches(lengths, batch_size=32, seed=7)
    again.set_epoch(3)
    assert list(again) == first and len(first) == len(sampler) == 32
    assert sorted(row for batch in first for row in batch) == list(range(1000))
    again.set_epoch(4)
    assert list(again) != first

    def padding(batches):
        return 1 - sum(lengths[b].sum() for b in batches) / sum(len(b) * lengths[b].max() for b in batches)

    shuffled = [list(rows) for rows in np.array_split(rng.permutation(1000), 32)]
    assert padding(first) < 0.1 < padding(shuffled)


def test_no_preset_gives_a_recipe_sized_to_the_data_that_flags_override(files, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "train-classifier",
        "--train-file",
        files["train"],
        "--validation-file",
        files["validation"],
        *COLUMNS,
        *TINY,
        "--max-steps",
        "4",
        "--output-dir",
        tmp_path / "run",
    )
    assert code == 0
    assert "recipe: 300 texts, median" in out and "3 labels" in out and "because" in out
    assert "kept from your flags: embedding_size, hidden_size, batch_size" in out
    results = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    recipe = results["recipe"]
    assert recipe["data"]["rows"] == 300 and recipe["data"]["labels"] == 3
    assert recipe["settings"]["bidirectional"] is True and recipe["kept_from_flags"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["bidirectional"] is True and saved["classifier_readout"] == "pooled" and saved["hidden_size"] == 16
    assert "Recipe" in (tmp_path / "run" / "README.md").read_text()
    assert 0 <= results["padding_share"] < 0.5


def test_a_preset_keeps_its_own_settings(files, tmp_path, capsys):
    argv = ["train-classifier", "--train-file", files["train"], *COLUMNS, *TINY, "--max-steps", "2"]
    code, out, _ = run_cli(capsys, *argv, "--preset", "default", "--output-dir", tmp_path / "run")
    assert code == 0 and "recipe:" not in out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bidirectional"] is False


class ScriptedValidation(SequenceClassificationTask):
    """The real task, whose validation reports a scripted accuracy sequence (to know which step is the best)."""

    SCRIPT = [50.0, 70.0, 65.0, 60.0, 90.0, 55.0]

    def validate(self, model, accelerator):
        result = super().validate(model, accelerator)
        step = len(self.seen)
        self.seen.append({name: parameter.detach().clone() for name, parameter in model.named_parameters()})
        return {**result, "validation_accuracy": self.SCRIPT[step]}


def classifier_config(files, output_dir, **settings):
    return TrainingConfig.from_preset(
        "classifier",
        "default",
        train_file=str(files["train"]),
        validation_file=str(files["validation"]),
        text_column="sentence",
        label_column="kind",
        output_dir=str(output_dir),
        embedding_size=8,
        hidden_size=16,
        batch_size=16,
        progress_bar=False,
        mixed_precision="no",
        **settings,
    )


def test_early_stopping_stops_and_saves_the_best_step(files, tmp_path):
    config = classifier_config(
        files, tmp_path / "run", epochs=50, eval_steps=2, save_total_limit=1, early_stopping_patience=3
    )
    config.metric_for_best_model = "accuracy"
    task = ScriptedValidation(config)
    task.seen = []
    ScriptedValidation.SCRIPT = [50.0, 70.0, 65.0, 60.0, 58.0, 90.0]
    summary = train(config, task)
    # Validations at steps 2, 4, 6, 8, 10: the best is step 4 (70), then three without improvement.
    assert summary["steps"] == 10 and summary["stopped_by"] == "early stopping"
    assert summary["best"] == {
        "metric": "accuracy",
        "key": "validation_accuracy",
        "value": 70.0,
        "step": 4,
        "of_steps": 10,
    }
    saved = hf_charnn.CharGRUForSequenceClassification.from_pretrained(tmp_path / "run")
    for name, parameter in saved.named_parameters():
        torch.testing.assert_close(parameter, task.seen[1][name])
    steps = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    assert steps == ["step-10", "step-4"]  # the best is kept besides the newest (save_total_limit 1)
    results = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert results["best"]["step"] == 4
    assert "step 4 of 10" in (tmp_path / "run" / "README.md").read_text()


def test_a_resumed_run_keeps_its_best(files, tmp_path):
    ScriptedValidation.SCRIPT = [50.0, 80.0, 60.0, 61.0, 62.0, 63.0]
    settings = dict(epochs=50, eval_steps=2, save_steps=2, max_steps=12)
    first = classifier_config(files, tmp_path / "run", stop_after_epoch=None, **settings)
    first.metric_for_best_model = "accuracy"
    first.max_steps = 6  # "killed" after step 6 (validations 2, 4, 6: best at 4)
    task = ScriptedValidation(first)
    task.seen = []
    train(first, task)
    resumed = classifier_config(files, tmp_path / "run", resume_from="latest", **settings)
    resumed.metric_for_best_model = "accuracy"
    task = ScriptedValidation(resumed)
    task.seen = [None] * 3  # the script continues where the first run stopped
    summary = train(resumed, task)
    assert summary["best"]["step"] == 4 and summary["best"]["value"] == 80.0 and summary["steps"] == 12


def test_a_time_budget_stops_in_time_with_the_schedule_fitted(files, tmp_path):
    config = classifier_config(files, tmp_path / "run", epochs=10_000, max_train_time="4s", logging_steps=1)
    summary = train(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    upper = 10_000 * 19  # epochs x steps an epoch (300 rows / 16)
    assert summary["stopped_by"] == "time budget" and 10 < summary["steps"] < upper
    assert 4.0 <= summary["train_seconds"] < 4.0 + 1.0
    assert summary["time_budget"]["seconds"] == 4.0
    peak = max(row["learning_rate"] for row in rows)
    # The cosine schedule was fitted to the budget: it has decayed close to zero by the last step.
    assert rows[-1]["learning_rate"] < 0.1 * peak
    assert "final_evaluation_seconds" in summary


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-train-time", "5 minutes"], "--max-train-time '5 minutes': give a positive duration"),
        (["--max-train-time", "0s"], "--max-train-time '0s'"),
        (["--early-stopping-patience", "2", "--validation-split-percentage", "0"], "needs validation data"),
        (["--metric-for-best-model", "bpc"], "a classifier run computes accuracy, macro_f1, loss"),
        (["--max-length", "0"], "--max-length must be at least 1, not 0"),
    ],
)
def test_bad_training_flags_give_one_line_and_exit_2(files, tmp_path, capsys, flags, message):
    code, _, err = run_cli(
        capsys, "train-classifier", "--train-file", files["train"], *COLUMNS, *TINY, *flags, "--output-dir", tmp_path
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_max_length_cuts_training_and_scoring_texts(files, tmp_path, capsys):
    argv = ["train-classifier", "--train-file", files["train"], *COLUMNS, *TINY, "--max-steps", "2"]
    assert run_cli(capsys, *argv, "--max-length", "5", "--output-dir", tmp_path / "run")[0] == 0
    tokenizer = hf_charnn.CharTokenizer.from_pretrained(tmp_path / "run")
    assert tokenizer.model_max_length == 5


class WarningsCaught:
    """Everything transformers logs at warning level or above, while inside."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self.stream, self.logger = io.StringIO(), hf_logging.get_logger()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setLevel(logging.WARNING)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


def test_trainer_trains_and_evaluates_a_saved_lm_the_run_clm_way_without_warnings(tmp_path):
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
        pipeline,
    )

    torch.manual_seed(0)
    model = hf_charnn.CharGRUForCausalLM(hf_charnn.CharGRUConfig(embedding_size=8, hidden_size=16))
    model.save_pretrained(tmp_path / "lm")
    hf_charnn.CharTokenizer.for_model(model.config).save_pretrained(tmp_path / "lm")
    with WarningsCaught() as caught:
        model = AutoModelForCausalLM.from_pretrained(tmp_path / "lm", trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / "lm", trust_remote_code=True)
        text = "the quick brown fox jumps over the lazy dog " * 10
        raw = Dataset.from_dict({"text": [text[i : i + 100] for i in range(0, len(text), 100)]})
        tokenized = raw.map(lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"])

        def group_texts(examples, block_size=32):  # run_clm.py's grouping: blocks, labels = input_ids
            ids = sum(examples["input_ids"], [])
            total = len(ids) // block_size * block_size
            blocks = [ids[i : i + block_size] for i in range(0, total, block_size)]
            return {"input_ids": blocks, "attention_mask": [[1] * block_size] * len(blocks), "labels": blocks}

        blocks = tokenized.map(group_texts, batched=True, remove_columns=tokenized.column_names)
        arguments = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, max_steps=3)
        trainer = Trainer(
            model=model,
            args=arguments,
            train_dataset=blocks,
            eval_dataset=blocks,
            data_collator=default_data_collator,
            processing_class=tokenizer,
        )
        assert trainer.label_names == ["labels"]
        trainer.train()
        metrics = trainer.evaluate()
        trainer.save_model(str(tmp_path / "trained"))
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "trained", trust_remote_code=True)
        reloaded.generate(**tokenizer(["the "], return_tensors="pt"), max_new_tokens=5)
        pipeline("text-generation", model=str(tmp_path / "trained"), trust_remote_code=True)("the", max_new_tokens=3)
    assert np.isfinite(metrics["eval_loss"]) and 0 < metrics["eval_loss"] < 4
    assert caught.text == "", caught.text


def test_trainer_trains_and_evaluates_a_saved_classifier_with_padding_without_warnings(tmp_path):
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        pipeline,
    )

    torch.manual_seed(0)
    config = hf_charnn.CharGRUConfig(
        embedding_size=8, hidden_size=16, num_labels=2, bidirectional=True, classifier_readout="pooled"
    )
    model = hf_charnn.CharGRUForSequenceClassification(config)
    model.save_pretrained(tmp_path / "clf")
    hf_charnn.CharTokenizer.for_model(model.config).save_pretrained(tmp_path / "clf")
    with WarningsCaught() as caught:
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf", trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / "clf", trust_remote_code=True)
        texts = ["hello there", "a cat", "the dog runs far", "zebra"] * 4
        raw = Dataset.from_dict({"text": texts, "label": [0, 1] * 8})
        data = raw.map(lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"])
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True, max_steps=2),
            train_dataset=data,
            eval_dataset=data,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
        )
        trainer.train()
        metrics = trainer.evaluate()
        trainer.save_model(str(tmp_path / "trained"))
        classify = pipeline("text-classification", model=str(tmp_path / "trained"), trust_remote_code=True)
        classify(["hello there", "zebra"])
    assert np.isfinite(metrics["eval_loss"])
    assert caught.text == "", caught.text


def test_lm_corpora_of_other_sizes_get_recipes_of_their_own_size():
    from hf_charnn.models.tokenization_char_gru import Vocabulary
    from hf_charnn.training.recipes import corpus_statistics, lm_recipe

    vocabulary = Vocabulary()
    sizes = (100_000, 1_000_000, 20_000_000)
    recipes = {size: lm_recipe(corpus_statistics(np.arange(size) % 27, vocabulary)) for size in sizes}
    small, medium, large = (recipes[size].settings for size in sizes)
    assert recipes[100_000].data["distinct_symbols"] == 27
    assert "100,000 training symbols" in recipes[100_000].data["about"]
    assert (small["hidden_size"], small["dropout"], small["epochs"]) == (384, 0.25, 14)  # the exercise's default LM
    assert medium["epochs"] == 10 and medium["max_train_time"] == "250s" and medium["dropout"] == 0.1
    assert large["hidden_size"] == 512 and large["epochs"] == 1 and large["dropout"] == 0.0
    assert all(recipe.reasons for recipe in recipes.values())


def test_an_lm_run_with_no_preset_applies_its_recipe_under_the_flags(tmp_path, capsys):
    from conftest import generated_corpus

    (tmp_path / "train.txt").write_text(generated_corpus(3000))
    code, out, _ = run_cli(
        capsys,
        "train-lm",
        "--train-file",
        tmp_path / "train.txt",
        "--hidden-size",
        "16",
        "--embedding-size",
        "8",
        "--max-steps",
        "3",
        "--no-progress-bar",
        "--output-dir",
        tmp_path / "run",
    )
    assert code == 0 and "recipe: 2,850 training symbols" in out and "kept from your flags" in out
    results = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert results["recipe"]["settings"]["epochs"] == 14 and results["steps"] == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["hidden_size"] == 16
