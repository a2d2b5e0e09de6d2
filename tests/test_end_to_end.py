"""
Trains the real `default` presets on the packaged exercise data (about a minute and a half on 2 cores), and asserts
README's quality targets: dev perplexity <= 4.0 for the LM, dev accuracy >= 79 % for the classifier.
"""

import pytest

from hf_charnn.cli import train_run as train
from hf_charnn.training import TrainingConfig


@pytest.mark.e2e
def test_default_lm_meets_the_exercise_threshold(tmp_path, data_dir):
    summary = train(
        TrainingConfig.from_preset(
            "lm", "default", data_dir=str(data_dir), output_dir=str(tmp_path), progress_bar=False
        )
    )
    results = summary["results"]
    assert results["sane"] and results["normalizes"]
    assert results["perplexity"] <= 4.0


@pytest.mark.e2e
def test_default_classifier_meets_the_exercise_threshold(tmp_path, data_dir):
    summary = train(
        TrainingConfig.from_preset(
            "classifier", "default", data_dir=str(data_dir), output_dir=str(tmp_path), progress_bar=False
        )
    )
    assert summary["results"]["accuracy"] >= 79.0


# Real multi-process launches, full runs and external clients: not in the fast tier (-m "not slow").
pytestmark = pytest.mark.slow
