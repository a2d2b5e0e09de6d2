"""
The exercise's two tasks, plugged into the one training loop as subclasses of the general tasks:

- `ExerciseLanguageModelingTask`: the LM on `text8-100k.txt`, scored on `text8-dev.txt` by perplexity with the
  *sane* / *normalizes* checks; with `exclude_dev_examples` (and `holdout_examples`) every window of those examples,
  with its next character, is masked out of the targets (a leak-free LM for the LM-transfer recipe);
- `VowelConsonantTask`: is the letter after 20 characters a vowel? 5,000 + 5,000 training strings (optionally every
  prefix of each as well, `prefix_labels`), validated on the 500 + 500 dev strings.

Both report in the exercise's words (`dev_perplexity`, `dev_accuracy`, `sane`, `normalizes`, `log_prob`).
"""

from ..card import CardWords
from ..data.cache import digest
from ..data.corpus import Corpus
from ..errors import UserError
from ..models.tokenization_char_gru import Vocabulary
from ..training.tasks import load_class
from ..training.tasks.classification.task import SequenceClassificationTask
from ..training.tasks.language_modeling.task import LanguageModelingTask, scoring_streams
from .files import (
    EXAMPLE_LENGTH,
    classification_dataset,
    encode_text,
    example_windows,
    load_classification_examples,
    load_lm_texts,
)
from .harness import evaluate_classifier, evaluate_exercise_lm

LM_DATASET_NAME = "text8 (exercise dev text, 500 chars)"
TRAINING_TEXT = "`text8-100k.txt` (the first 100,000 characters of text8)"


def check_text8_vocab(config):
    if config.vocab not in ("auto", "text8"):
        raise UserError(f"the exercise data is text8 form: train it with --vocab text8 (or auto), not {config.vocab}")


def holdout_examples(config) -> tuple[list[str], list[str]]:
    """The training examples a run with `holdout_examples` keeps out of training (the last N of each class)."""
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    return consonants[-config.holdout_examples :], vowels[-config.holdout_examples :]


class ExerciseLanguageModelingTask(LanguageModelingTask):
    """The exercise's LM (see the module docstring)."""

    validation_name = "dev"

    def load_corpus(self):
        config = self.config
        check_text8_vocab(config)
        train_text, dev_text = load_lm_texts(config.data_dir, config.normalize)
        return Corpus(
            encode_text(train_text),
            encode_text(dev_text),
            description="exercise data",
            vocabulary=Vocabulary(),
            vocabulary_reason="text8: the exercise data",
        )

    def masked_spans(self, corpus):
        held_out = []
        if self.config.exclude_dev_examples:
            held_out += sum(load_classification_examples(self.config.data_dir, "dev"), [])
        if self.config.holdout_examples:
            held_out += sum(holdout_examples(self.config), [])
        return example_windows(Vocabulary().decode(corpus.train), held_out) if held_out else []

    def evaluate(self, model, ids):
        return evaluate_exercise_lm(model, ids, scoring_streams(self.config, len(ids)), self.config.eval_warmup)

    def card_words(self, summary):
        results = summary["results"]
        return CardWords(
            about=(
                "A character-level GRU language model over the 27 symbols of "
                "[text8](http://mattmahoney.net/dc/textdata.html) "
                f"(`a`-`z` and space), trained with `hf_charnn` on {TRAINING_TEXT}."
            ),
            dataset_type="text8",
            dataset_name=LM_DATASET_NAME,
            training_data=f"{TRAINING_TEXT}, evaluated on {LM_DATASET_NAME}.",
            extra_rows=[
                ("validation log probability", f"{results['log_prob']:.2f}"),
                ("sane (sequence log prob = sum of next-char log probs)", results["sane"]),
                ("normalizes (next-char probabilities sum to 1)", results["normalizes"]),
            ],
            limits=(
                "A small teaching and benchmarking model for the text8 character-modelling exercise. It knows only the "
                "27 text8 symbols: real text must be normalised first (`hf_charnn.normalize_text`: lowercase, digits "
                "spelled out, other characters turned into spaces), and any other character is refused. Trained on "
                "100k "
                "characters of 2006 Wikipedia, it reproduces that text's topics and biases and is not meant for "
                "generating text for people to read."
            ),
            tags=("text8",),
        )


class VowelConsonantTask(SequenceClassificationTask):
    """The exercise's classifier (see the module docstring)."""

    validation_name = "dev"

    def load(self):
        config = self.config
        check_text8_vocab(config)
        consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
        dev = load_classification_examples(config.data_dir, "dev", config.normalize)
        self.fingerprint = {
            "train": f"{len(consonants) + len(vowels)}:{_examples_digest(consonants, vowels)}",
            "validation": f"{sum(map(len, dev))}:{_examples_digest(*dev)}",
        }
        if config.holdout_examples:
            consonants, vowels = consonants[: -config.holdout_examples], vowels[: -config.holdout_examples]
        self.train_dataset = classification_dataset(consonants, vowels, prefix_labels=config.prefix_labels)
        self.validation_dataset = classification_dataset(*dev)
        self.validation = (dev[0] + dev[1], [0] * len(dev[0]) + [1] * len(dev[1]))
        self.label_names = ["consonant", "vowel"]
        self.vocabulary, self.vocabulary_reason, self.description = (
            Vocabulary(),
            "text8: the exercise data",
            "exercise data",
        )

    def start_lines(self):
        return [f"vocabulary: {self.vocabulary_reason}"]

    def sequence_length(self) -> int:
        return EXAMPLE_LENGTH

    def final_evaluation(self, model):
        results = super().final_evaluation(model)
        if self.config.holdout_examples:
            results["holdout"] = evaluate_classifier(model, *holdout_examples(self.config))
        return results

    def card_words(self, summary):
        return CardWords(
            about=(
                "A character-level GRU classifier that reads 20 characters of "
                "[text8](http://mattmahoney.net/dc/textdata.html) "
                "(`a`-`z` and space) and predicts whether the next letter is a vowel (a, e, i, o, u) or a consonant. "
                "Trained with `hf_charnn`."
            ),
            dataset_type="text8",
            dataset_name="text8 vowel/consonant (exercise dev)",
            validation_split="dev",
            training_data=(
                "the exercise's 5,000 + 5,000 training strings (`train-{consonant,vowel}-examples.txt`); "
                "evaluated on the 500 + 500 dev strings."
            ),
            limits=(
                "A teaching and benchmarking model for the text8 vowel/consonant exercise. It reads only the 27 text8 "
                "symbols (normalise real text with `hf_charnn.normalize_text`), expects contexts like its 20-character "
                "training strings, and says nothing about what the next letter actually is. Note that the exercise's "
                "dev "
                "strings are substrings of the first 100k characters of text8."
            ),
            example="orums in abu dhabi t",
            tags=("text8",),
        )


def _examples_digest(*example_lists) -> str:
    return digest(f"{example}\n".encode() for examples in example_lists for example in examples)


def exercise_task(config):
    """The exercise's task for a config that names no data: its LM, or its vowel/consonant classifier."""
    general = load_class(type(config).task_class)
    for task_class in (ExerciseLanguageModelingTask, VowelConsonantTask):
        if issubclass(task_class, general):
            return task_class(config)
    raise UserError(f"the exercise has no {config.task} task: give the data to train on (--train-file)")


__all__ = ["ExerciseLanguageModelingTask", "VowelConsonantTask", "exercise_task", "holdout_examples"]
