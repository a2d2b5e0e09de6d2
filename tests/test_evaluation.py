import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import REFERENCE_DATA_DIR

from hf_charnn.evaluation import classification_report, evaluate_lm
from hf_charnn.exercise.baselines import FrequencyClassifier, UniformLanguageModel
from hf_charnn.exercise.files import PACKAGED_DATA_DIR, load_classification_examples, load_lm_texts
from hf_charnn.exercise.harness import check_normalization, check_sanity, evaluate_classifier, evaluate_exercise_lm


def sha256_sums(sums_file: Path) -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in sums_file.read_text().splitlines())}


def test_packaged_data_matches_its_sums():
    sums = sha256_sums(PACKAGED_DATA_DIR / "SHA256SUMS")
    assert len(sums) == 6
    for name, digest in sums.items():
        assert hashlib.sha256((PACKAGED_DATA_DIR / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.skipif(not (REFERENCE_DATA_DIR / "SHA256SUMS").is_file(), reason="no ../shared/data beside this checkout")
def test_packaged_data_is_byte_identical_to_the_reference_copy():
    for name, digest in sha256_sums(REFERENCE_DATA_DIR / "SHA256SUMS").items():
        assert hashlib.sha256((PACKAGED_DATA_DIR / name).read_bytes()).hexdigest() == digest, name


def test_frequency_baseline_reproduces_71_4_percent(data_dir):
    classifier = FrequencyClassifier.fit(*load_classification_examples(data_dir, "train"))
    result = evaluate_classifier(classifier, *load_classification_examples(data_dir, "dev"))
    assert (result["correct"], result["total"], result["accuracy"]) == (714, 1000, pytest.approx(71.4))
    matrix = result["confusion_matrix"]["matrix"]  # rows: true consonant, vowel; columns: predicted
    assert result["confusion_matrix"]["labels"] == ["consonant", "vowel"]
    assert sum(map(sum, matrix)) == 1000 and matrix[0][0] + matrix[1][1] == 714 and sum(matrix[0]) == 500


def test_classification_report_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    gold = [0, 0, 1, 1, 1, 2, 2, 2, 2, 3]
    predicted = [0, 1, 1, 1, 0, 2, 2, 0, 2, 0]  # label 3 is never predicted right; no text predicts it
    names = ["a", "b", "c", "d"]
    report = classification_report(gold, predicted, names)
    assert report["accuracy"] == pytest.approx(100 * metrics.accuracy_score(gold, predicted))
    assert report["macro_f1"] == pytest.approx(
        100 * metrics.f1_score(gold, predicted, average="macro", zero_division=0)
    )
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        gold, predicted, labels=[0, 1, 2, 3], zero_division=0
    )
    for index, name in enumerate(names):
        scores = report["per_label"][name]
        assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(
            (100 * precision[index], 100 * recall[index], 100 * f1[index])
        )
        assert scores["support"] == support[index]
    assert (
        report["confusion_matrix"]["matrix"] == metrics.confusion_matrix(gold, predicted, labels=[0, 1, 2, 3]).tolist()
    )


def test_uniform_lm_has_perplexity_27(data_dir):
    _, dev_text = load_lm_texts(data_dir)
    result = evaluate_exercise_lm(UniformLanguageModel(), dev_text)
    assert result["sane"] and result["normalizes"]
    assert result["perplexity"] == pytest.approx(27.0)
    assert result["log_prob"] == pytest.approx(-500 * np.log(27))


def test_random_gru_lm_is_sane_and_normalizes(random_lm):
    assert check_sanity(random_lm)
    assert check_normalization(random_lm)
    result = evaluate_exercise_lm(random_lm, " the united states ")
    assert set(result) == {"sane", "normalizes", "log_prob", "avg_log_prob", "perplexity", "bpc", "chars", "streams"}
    general = evaluate_lm(random_lm, " the united states ")  # any LM: no checks, none of the exercise's words
    assert set(general) == {"loss", "perplexity", "bpc", "chars", "streams"}
    assert general["loss"] == pytest.approx(-result["avg_log_prob"]) and general["perplexity"] == pytest.approx(
        result["perplexity"]
    )
    assert result["perplexity"] == pytest.approx(np.exp(-result["avg_log_prob"]))
    assert result["bpc"] == pytest.approx(-result["avg_log_prob"] / np.log(2)) and result["chars"] == 19
    assert result["log_prob"] == pytest.approx(random_lm.get_log_prob_sequence(" the united states ", " "), abs=1e-4)


class SequenceOffByOne(UniformLanguageModel):
    """Scores one character too many: not sane."""

    def get_log_prob_sequence(self, next_chars, context):
        return super().get_log_prob_sequence(next_chars + "x", context)


class PositiveLogProbs(UniformLanguageModel):
    """Consistent, but claims probabilities above one: not sane, does not normalize."""

    def get_next_char_log_probs(self, context):
        return np.full(self.vocab_size, 0.1)

    def get_log_prob_sequence(self, next_chars, context):
        return 0.1 * len(next_chars)


class HalfMass(UniformLanguageModel):
    """Consistent and <= 0, but its probabilities sum to one half: sane, does not normalize."""

    def get_next_char_log_probs(self, context):
        return super().get_next_char_log_probs(context) + np.log(0.5)

    def get_log_prob_sequence(self, next_chars, context):
        return super().get_log_prob_sequence(next_chars, context) + np.log(0.5) * len(next_chars)


@pytest.mark.parametrize(
    "model, sane, normalizes",
    [(SequenceOffByOne(), False, False), (PositiveLogProbs(), False, False), (HalfMass(), True, False)],
)
def test_harness_catches_broken_models(model, sane, normalizes):
    assert check_sanity(model) is sane
    assert check_normalization(model) is normalizes


def test_classifier_harness_counts_per_class():
    class AlwaysVowel:
        def predict(self, context):
            return 1

    result = evaluate_classifier(AlwaysVowel(), ["abc", "def"], ["ghi"])
    assert (result["correct"], result["total"], result["accuracy"]) == (1, 3, pytest.approx(100 / 3))
    assert result["confusion_matrix"]["matrix"] == [[0, 2], [0, 1]]
    assert result["per_label"]["vowel"] == {
        "precision": pytest.approx(100 / 3),
        "recall": 100.0,
        "f1": pytest.approx(50.0),
        "support": 1,
    }
    assert result["macro_f1"] == pytest.approx(25.0)  # consonant F1 0, vowel F1 50
