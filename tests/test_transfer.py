import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_charnn import CharGRUForCausalLM, CharGRUForSequenceClassification
from hf_charnn.cli import train_run as train_with_recipe
from hf_charnn.exercise.files import VOWEL_GROUPS, example_windows, load_classification_examples
from hf_charnn.exercise.tasks import ExerciseLanguageModelingTask, holdout_examples
from hf_charnn.training import TrainingConfig


def test_leak_free_lm_never_trains_on_a_dev_window(data_dir):
    """Rebuild each training target's 21-char window (20 chars of context + the target) from the dataset rows."""
    config = TrainingConfig.from_preset(
        "lm", "default", data_dir=str(data_dir), exclude_dev_examples=True, holdout_examples=500
    )
    task = ExerciseLanguageModelingTask(config)
    task.load()
    dataset = task.train_dataset
    text = (data_dir / "text8-100k.txt").read_text()
    # The dev examples, and the held-out training examples the LM-transfer preset compares its classifiers on.
    dev = sum(load_classification_examples(data_dir, "dev"), []) + sum(holdout_examples(config), [])
    dev_windows = {text[start:end] for start, end in example_windows(text, dev)}
    assert len(dev_windows) >= len(set(dev)) * 0.9  # almost every dev example occurs (with its next letter)
    streams = config.batch_size
    stream_length = (len(text) - 1) // streams
    trained_windows, masked = 0, 0
    for row_index, row in enumerate(dataset):
        window, stream = divmod(row_index, streams)
        start = stream * stream_length + window * config.chunk_size
        for offset, label in enumerate(row["shift_labels"].tolist()):
            target = start + offset + 1  # the character this position is trained to predict
            if label == -100:
                masked += 1
                continue
            assert label == "abcdefghijklmnopqrstuvwxyz ".index(text[target])
            if target >= 20:
                assert text[target - 20 : target + 1] not in dev_windows, f"dev window trained at {target}"
                trained_windows += 1
    # About a third of the targets fall inside some excluded window (2,000 examples, 21 characters each).
    assert masked >= len(dev_windows) and trained_windows > 60_000


def test_zero_shot_classifier_reads_vowel_mass(random_lm, tmp_path):
    classifier = CharGRUForSequenceClassification.from_lm(random_lm, VOWEL_GROUPS)
    assert classifier.config.id2label == {0: "consonant", 1: "vowel"}
    contexts = ["orums in abu dhabi t", "ab"]
    log_probs = [random_lm.get_next_char_log_probs(context) for context in contexts]
    vowel_mass = [np.exp(lp[[0, 4, 8, 14, 20]]).sum() for lp in log_probs]
    consonant_mass = [np.exp(lp).sum() - v - np.exp(lp[26]) for lp, v in zip(log_probs, vowel_mass)]
    assert classifier.predict_batch(contexts) == [int(v > c) for v, c in zip(vowel_mass, consonant_mass)]
    probabilities = torch.softmax(classifier(torch.tensor([[0, 1]])).logits, dim=-1)[0, 1].item()
    assert probabilities == pytest.approx(vowel_mass[1] / (vowel_mass[1] + consonant_mass[1]), abs=1e-5)
    classifier.save_pretrained(tmp_path)
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path).predict_batch(
        contexts
    ) == classifier.predict_batch(contexts)


def test_lm_transfer_preset_trains_both_and_reports_both(tmp_path, tiny_data_dir):
    config = TrainingConfig.from_preset(
        "classifier",
        "lm-transfer",
        data_dir=str(tiny_data_dir),
        output_dir=str(tmp_path),
        epochs=1,
        holdout_examples=50,
        progress_bar=False,
    )
    summary = train_with_recipe(config)
    results = json.loads((tmp_path / "eval_results.json").read_text())
    assert results["chosen"] in ("zero-shot", "fine-tuned")
    for kind in ("zero_shot", "fine_tuned"):
        assert results[kind]["holdout"]["total"] == 100 and results[kind]["dev"]["total"] == 100
    assert results["results"] == results[results["chosen"].replace("-", "_")]["dev"] == summary["results"]
    lm = CharGRUForCausalLM.from_pretrained(tmp_path / "leak-free-lm")
    classifier_config = json.loads((tmp_path / "config.json").read_text())
    assert classifier_config["hidden_size"] == lm.config.hidden_size
