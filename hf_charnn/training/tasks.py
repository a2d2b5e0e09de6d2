"""
Tasks: everything that differs between training one kind of model and another, so that the loop (`loop.py`) has no
branch on the task. A task builds its data and its model, counts what a step's batch teaches, validates, runs the
final evaluation, and says what the card and `eval_results.json` report.

- `LanguageModelingTask`: next-symbol prediction on a corpus (`data/corpus.py`), read as TBPTT streams;
- `SequenceClassificationTask`: a label per text (`data/labeled.py`), texts of any length in padded batches.

The exercise's two tasks (`hf_charnn.exercise.tasks`) are subclasses that read its packaged files and keep its words.

    task = task_for(config)        # the task a TrainingConfig names, on the data it names
    summary = train(config, task)
"""

import math
import statistics

import numpy as np
import torch
from accelerate import PartialState

from ..card import CardWords, data_description, describe_vocabulary, example_text
from ..data.corpus import load_corpus
from ..data.labeled import LabeledRows, LengthGroupedBatches, PaddedBatches, load_labeled_data
from ..data.windows import LMWindows
from ..dynamic_evaluation import REPORT_CHARS, STATS_CHARS, evaluate_dynamic, gradient_statistics, save_statistics
from ..errors import DataError
from ..evaluation import bits_per_char, classification_report, evaluate_labeled, evaluate_lm, score_text
from ..models.modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from . import linear, recipes
from .settings import AUTO_PRESET, BEST_MODEL_METRICS

EXACT_SCORING_CHARS = 20_000  # validation texts up to this long are scored exactly (one stream)
CHARS_PER_SCORING_STREAM = 20_000
VALIDATION_ROWS_PER_PROCESS = 64  # classifier validation batch: this many rows on each process


def scoring_streams(config, chars: int) -> int:
    """Streams for scoring a validation text: exact (1) for short texts, then one per 20k characters, at most 64."""
    if config.eval_streams:
        return config.eval_streams
    return 1 if chars <= EXACT_SCORING_CHARS else min(64, chars // CHARS_PER_SCORING_STREAM)


class Task:
    """The base: what every task provides (see the module docstring). `load` fills the data attributes."""

    kind: str  # "lm" or "classifier": which model, card template and model-index task
    model_class: type
    validation_name = "validation"  # metrics rows name validation figures `{validation_name}_{metric}`
    collate_fn = None  # None: a batch's rows are already of one length

    def __init__(self, config):
        self.config = config
        self.train_dataset = None
        self.validation = self.test = None
        self.vocabulary = None
        self.vocabulary_reason = ""
        self.description = ""
        self.fingerprint: dict = {}  # {split: "length:digest"}, compared on resume
        self.recipe: recipes.Recipe | None = None  # the settings sized to the data (preset "auto")

    # -- data and model
    def load(self):
        raise NotImplementedError

    def apply_recipe(self, recipe: "recipes.Recipe"):
        """An `auto` run: the recipe's settings go into the config (the user's own kept) and are checked."""
        if self.config.preset != AUTO_PRESET:
            return
        self.recipe = recipe
        recipe.apply(self.config)
        self.config.check()

    def start_lines(self) -> list[str]:
        """What the run prints once its data is read."""
        lines = [f"vocabulary: {self.vocabulary_reason}"]
        if self.recipe is not None:
            lines += [self.recipe.summary_line(), *(f"  because {reason}" for reason in self.recipe.reasons)]
        return lines

    def summary_extras(self) -> dict:
        """What the run summary (and `eval_results.json`) says of the task's own choices: its recipe."""
        return {"recipe": self.recipe.as_dict()} if self.recipe is not None else {}

    def batch_sampler(self, dataset):
        """A batch sampler for the training rows, or None: the loop's shuffled (or, carrying state, ordered) batches."""
        return None

    def loss(self, batch: dict, outputs) -> torch.Tensor:
        """The training loss of a batch (the model's own, unless the task weighs it)."""
        return outputs.loss

    def default_best_metric(self) -> str:
        """What picks the best model under early stopping when no `--metric-for-best-model` is given."""
        return "loss"

    def best_metric(self, name: str) -> tuple[str, bool]:
        """(the metrics row key of `--metric-for-best-model` NAME, whether larger is better)."""
        return f"{self.validation_name}_{name}", BEST_MODEL_METRICS[self.kind][name]

    @property
    def carries_state(self) -> bool:
        """Whether the GRU state is carried from one batch to the next (batches then come in order, unshuffled)."""
        return False

    def sequence_length(self) -> int:
        """A typical training row's length (the precision probe times a step of this shape)."""
        raise NotImplementedError

    def output_size(self) -> int:
        raise NotImplementedError

    def new_model(self):
        return self.model_class(self.config.model_config(self.vocabulary))

    def finish_model(self, model) -> dict:
        """After training (the best step's weights loaded): the task's last choices; what the summary says of them."""
        return {}

    # -- steps, validation, evaluation
    def counts(self, batch: dict, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, correct predictions) of a training batch, on the device (no host sync)."""
        raise NotImplementedError

    def train_metrics(self, loss: float, correct: int, targets: int) -> dict:
        raise NotImplementedError

    def prepare_validation(self, accelerator):
        """Prepare what `validate` reads, once per run (under several processes too)."""

    def validate(self, model, accelerator) -> dict:
        raise NotImplementedError

    def final_evaluation(self, model) -> dict:
        """{"results": on all of the validation data, "test_results": on the test split, when there is one}."""
        raise NotImplementedError

    # -- what the run reports
    def curve(self) -> tuple[str, str]:
        """(the metrics row key of the learning curve's validation panel, its axis label)."""
        raise NotImplementedError

    def card_words(self, summary: dict) -> CardWords:
        raise NotImplementedError

    def save_extras(self, output_dir):
        """Files of the task's own beside the saved model (an LM: its dynamic-evaluation statistics)."""


class LanguageModelingTask(Task):
    """
    Next-symbol prediction on the corpus a config names, read as `batch_size` TBPTT streams of `chunk_size` windows.
    """

    kind = "lm"
    model_class = CharGRUForCausalLM

    def load_corpus(self):
        return load_corpus(self.config)

    def masked_spans(self, corpus) -> list:
        """
        (start, end) spans of the training ids that are never targets (none here; the exercise masks its dev windows).
        """
        return []

    def load(self):
        config = self.config
        corpus = self.load_corpus()
        self.apply_recipe(recipes.lm_recipe(recipes.corpus_statistics(corpus.train, corpus.vocabulary)))
        if len(corpus.validation) < config.chunk_size:
            raise DataError(
                f"the validation text ({corpus.description}) has {len(corpus.validation)} characters, fewer than one "
                f"training window ({config.chunk_size}); give a longer validation text"
            )
        self.train_dataset = LMWindows(
            corpus.train, config.chunk_size, config.batch_size, config.carry_state, self.masked_spans(corpus)
        )
        self.train_ids = np.asarray(corpus.train)
        # Validation and test stay ids (a uint8 view): the model scores ids of its own vocabulary.
        self.validation = np.asarray(corpus.validation)
        self.test = np.asarray(corpus.test) if corpus.test is not None else None
        self.vocabulary, self.vocabulary_reason = corpus.vocabulary, corpus.vocabulary_reason
        self.description, self.fingerprint = corpus.description, corpus.fingerprint

    @property
    def carries_state(self) -> bool:
        return self.config.carry_state

    def sequence_length(self) -> int:
        return self.config.chunk_size

    def output_size(self) -> int:
        return self.vocabulary.size

    @property
    def rate(self) -> str:
        return "bpb" if self.vocabulary.kind == "bytes" else "bpc"  # bits per byte for a bytes model

    def counts(self, batch, outputs):
        targets = (batch["shift_labels"] != -100).sum()
        return targets, targets * 0

    def train_metrics(self, loss, correct, targets):
        return {"train_perplexity": math.exp(loss), f"train_{self.rate}": loss / math.log(2)}

    def validate(self, model, accelerator):
        config = self.config
        text = self.validation[: config.eval_chars] if config.eval_chars else self.validation
        log_prob = score_text(
            accelerator.unwrap_model(model), text, scoring_streams(config, len(text)), config.eval_warmup
        )
        name = self.validation_name
        return {
            f"{name}_loss": -log_prob / len(text),
            f"{name}_perplexity": math.exp(-log_prob / len(text)),
            f"{name}_{self.rate}": bits_per_char(log_prob, len(text)),
        }

    def best_metric(self, name):
        key, larger = super().best_metric(name)
        return (f"{self.validation_name}_{self.rate}" if name == "bpc" else key), larger

    def evaluate(self, model, ids) -> dict:
        return evaluate_lm(model, ids, scoring_streams(self.config, len(ids)), self.config.eval_warmup)

    def final_evaluation(self, model):
        results = {"results": self.evaluate(model, self.validation)}
        if self.test is not None:
            results["test_results"] = self.evaluate(model, self.test)
        # Dynamic evaluation (a different metric, reported apart): gradient statistics from a bounded slice of the
        # training text, saved with the model (`save_extras`), then the first validation symbols scored dynamically.
        self.dynamic_statistics = gradient_statistics(model, self.train_ids)  # (its first STATS_CHARS symbols)
        read = min(len(self.train_ids), STATS_CHARS)
        self.dynamic_source = f"training text ({self.description}, its first {read:,} symbols)"
        results["dynamic"] = evaluate_dynamic(
            model, self.validation[:REPORT_CHARS], self.dynamic_statistics, stats_source=self.dynamic_source
        )
        return results

    def save_extras(self, output_dir):
        if getattr(self, "dynamic_statistics", None) is not None:
            save_statistics(self.dynamic_statistics, output_dir, self.dynamic_source)

    def curve(self):
        unit = "byte" if self.rate == "bpb" else "character"
        return f"{self.validation_name}_{self.rate}", f"validation bits per {unit}"

    def card_words(self, summary):
        data = data_description(self.config)
        kind = self.vocabulary.kind
        if kind == "bytes":
            about = f"A byte-level GRU language model (the 256 UTF-8 byte values: any text, as it is), trained with `hf_charnn` on {data['train']}."  # noqa: E501
            limits = (
                "A small character-level model: it reads any text as UTF-8 bytes, and its figures are per byte. It "
                "reproduces its training text's style, topics and biases and is not meant for generating text for "
                "people to read."
            )
        elif kind == "chars":
            about = f"A character-level GRU language model over the characters of its training data, trained with `hf_charnn` on {data['train']}."  # noqa: E501
            unk = " (or read as `<unk>`)" if self.vocabulary.unk else ""
            limits = (
                "A small character-level model. It knows only the characters of its training data; any other "
                "character "
                f"is refused{unk}. It reproduces its training text's style, topics and biases and is not meant for "
                "generating text for people to read."
            )
        else:
            about = (
                f"A character-level GRU language model over the 27 symbols of text8 (`a`-`z` and space), trained with "
                f"`hf_charnn` on {data['train']}."
            )
            limits = (
                "A small character-level model over the 27 text8 symbols: real text must be normalised first "
                "(`hf_charnn.normalize_text`: lowercase, digits spelled out, other characters turned into spaces), and "
                "any other character is refused. It reproduces its training text's topics and biases and is not meant "
                "for generating text for people to read."
            )
        return CardWords(
            about=about,
            dataset_type=data["type"],
            dataset_name=data["name"],
            training_data=f"{data['train']}, evaluated on {data['name']}.",
            limits=limits,
            tags=("text8",) if data["type"] == "text8" else (),
        )


class SequenceClassificationTask(Task):
    """A label per text, for the labeled texts a config names; texts of any length, padded on the right, read packed."""

    kind = "classifier"
    model_class = CharGRUForSequenceClassification

    def __init__(self, config):
        super().__init__(config)
        self.label_names: list[str] = []
        self.validation_dataset = None
        self.validation_loader = None
        self.class_weights = None
        self.statistics: dict = {}  # of the training texts (recipes.labeled_statistics)
        self.linear_fit: dict | None = None  # what fitting the linear n-gram part measured (training/linear.py)

    def load(self):
        config = self.config
        labeled = load_labeled_data(config)
        self.vocabulary, self.vocabulary_reason = labeled.vocabulary, labeled.vocabulary_reason
        self.label_names, self.description, self.fingerprint = (
            labeled.label_names,
            labeled.description,
            labeled.fingerprint,
        )
        train = labeled.train
        self.statistics = recipes.labeled_statistics(
            [len(text) for text in train.texts], train.labels, len(self.label_names)
        )
        self.apply_recipe(recipes.classifier_recipe(self.statistics))
        if config.class_weight == "balanced":  # each label's loss weighed by 1 / its share (sklearn's "balanced")
            counts = np.bincount(train.labels, minlength=len(self.label_names)).astype(np.float64)
            self.class_weights = torch.tensor(
                np.where(counts > 0, len(train.labels) / (len(counts) * np.maximum(counts, 1)), 0.0),
                dtype=torch.float32,
            )
        self.train_dataset = LabeledRows(train, labeled.vocabulary, config.max_length)
        self.validation_dataset = LabeledRows(labeled.validation, labeled.vocabulary, config.max_length)
        cut = (lambda texts: [text[: config.max_length] for text in texts]) if config.max_length else list
        self.validation = (cut(labeled.validation.texts), labeled.validation.labels)
        self.test = (cut(labeled.test.texts), labeled.test.labels) if labeled.test is not None else None
        self.collate_fn = PaddedBatches(pad_id=labeled.vocabulary.size)

    def start_lines(self):
        return [
            *super().start_lines(),
            f"labels: {', '.join(self.label_names)} ({len(self.train_dataset)} training texts, "
            f"{len(self.validation[0])} validation texts)",
        ]

    def default_best_metric(self):
        return "accuracy"  # measured better than macro-F1 at picking the step, for any label balance (recipes.py)

    def batch_sampler(self, dataset):
        if not self.config.group_by_length:
            return None
        rows = dataset.indices if isinstance(dataset, torch.utils.data.Subset) else range(len(dataset))
        base = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
        return LengthGroupedBatches([len(base.ids[row]) for row in rows], self.config.batch_size, self.config.seed)

    def loss(self, batch, outputs):
        labels = batch["labels"]
        if self.class_weights is None or labels.dim() == 2:
            return outputs.loss
        weights = self.class_weights.to(outputs.logits.device)
        return torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights)

    def sequence_length(self) -> int:
        return int(statistics.median(len(ids) for ids in self.train_dataset.ids))

    def output_size(self) -> int:
        return len(self.label_names)

    def new_model(self):
        if self.config.init_from:
            # The backbone (embedding + GRU) comes from the LM; the classifier head starts fresh.
            return self.model_class.from_pretrained(self.config.init_from, dropout=self.config.dropout)
        model = self.model_class(self.config.model_config(self.vocabulary, self.label_names))
        if model.ngram_linear is not None:
            # The linear n-gram part is fitted first, to convergence, and frozen; the GRU then trains on its own
            # (its scores alone in the loss and in validation) and the two are weighed on validation at the end.
            rows = self.train_dataset.ids
            if self.config.max_train_rows is not None:
                rows = rows[: self.config.max_train_rows]
            self.linear_fit = linear.fit_ngram_linear(model, rows, self.train_dataset.labels[: len(rows)])
            PartialState().print(
                f"linear n-gram part: fitted on {len(rows):,} texts ({self.linear_fit['buckets_used']:,} buckets used) "
                f"in {self.linear_fit['seconds']:g} s, training accuracy {self.linear_fit['train_accuracy']:g}%",
            )
            model.config.ngram_linear_scale = 0.0
        return model

    def finish_model(self, model):
        if model.ngram_linear is None:
            return {}
        rows = self.validation_dataset.ids
        choice = linear.choose_logit_scales(model, rows, self.validation_dataset.labels, self.label_names)
        chosen = choice["chosen"]
        PartialState().print(
            f"scores weighed on validation: {chosen['recurrent_scale']:g} x GRU + {chosen['ngram_linear_scale']:g} x "
            f"linear n-grams ({chosen['accuracy']:.2f}% accuracy, {chosen['macro_f1']:.2f} macro-F1)"
        )
        return {"ngram_linear": {"fit": self.linear_fit, **choice}}

    def counts(self, batch, outputs):
        targets = batch["labels"]
        if targets.dim() == 2:
            targets = targets[:, -1]  # one label per position (prefix labels): accuracy is about the whole text
        return (targets != -100).sum(), (outputs.logits.argmax(-1) == targets).sum()

    def train_metrics(self, loss, correct, targets):
        return {"train_accuracy": 100.0 * correct / max(targets, 1)}

    def prepare_validation(self, accelerator):
        # Any process count: each process takes VALIDATION_ROWS_PER_PROCESS rows of a batch; the uneven last batch
        # is evened out by Accelerate and its repeats dropped again by gather_for_metrics.
        batch = VALIDATION_ROWS_PER_PROCESS * accelerator.num_processes
        # Its own generator: each pass over a DataLoader draws a seed from a generator, and from the global one (the
        # dropout masks' source) without it, so how often a run validated would change what it trained.
        self.validation_loader = accelerator.prepare_data_loader(
            torch.utils.data.DataLoader(
                self.validation_dataset,
                batch_size=batch,
                collate_fn=self.collate_fn,
                generator=torch.Generator().manual_seed(0),
            )
        )

    def validate(self, model, accelerator):
        gold, predicted, loss_sum = [], [], 0.0
        for batch in self.validation_loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits.float()
            labels = batch["labels"]
            if labels.dim() == 2:
                labels = labels[:, -1]
            losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            predictions, labels, losses = accelerator.gather_for_metrics((logits.argmax(-1), labels, losses))
            gold += labels.tolist()
            predicted += predictions.tolist()
            loss_sum += float(losses.sum())
        report = classification_report(gold, predicted, self.label_names)
        name = self.validation_name
        return {
            f"{name}_accuracy": report["accuracy"],
            f"{name}_macro_f1": report["macro_f1"],
            f"{name}_loss": loss_sum / max(len(gold), 1),
        }

    def final_evaluation(self, model):
        results = {"results": evaluate_labeled(model, *self.validation, self.label_names)}
        if self.test is not None:
            results["test_results"] = evaluate_labeled(model, *self.test, self.label_names)
        return results

    def curve(self):
        return f"{self.validation_name}_accuracy", "validation accuracy (%)"

    def card_words(self, summary):
        config, data = self.config, data_description(self.config)
        labels = ", ".join(f"`{label}`" for label in self.label_names)
        unseen = (
            "; a character it was not trained on is an error"
            if self.vocabulary.kind == "chars" and not self.vocabulary.unk
            else ""
        )
        return CardWords(
            about=(
                f"A character-level GRU text classifier trained with `hf_charnn` on {data['train']}: it reads a text "
                f"character by character ({describe_vocabulary(self.vocabulary)}) and predicts one of "
                f"{len(self.label_names)} labels ({labels})."
            ),
            dataset_type=data["type"],
            dataset_name=data["name"],
            training_data=f"{data['train']}, labels from its `{config.label_column}` column, texts from "
            f"`{config.text_column}`.{mix_words(summary)}",
            limits=(
                "A small character-level model: it sees spelling, case and punctuation, not meaning beyond what its "
                f"training texts teach. It reads only its vocabulary's symbols ({self.vocabulary.kind}){unseen}. Check "
                "its per-label scores above before relying on it."
            ),
            example=example_text(self.vocabulary, "some text to classify"),
            not_used=("chunk_size", "carry_state", "prefix_labels"),
        )


def mix_words(summary: dict) -> str:
    """The card's words for a classifier with a linear n-gram part: how its scores were weighed."""
    mix = summary.get("ngram_linear")
    if not mix:
        return ""
    chosen, fit = mix["chosen"], mix["fit"] or {}
    return (
        f" Scores: {chosen['recurrent_scale']:g} x the GRU's head + {chosen['ngram_linear_scale']:g} x a linear "
        f"classifier over the same hashed n-grams (an n-gram SVM's, fitted by liblinear on the training texts"
        + (f", C={fit['c']:g}" if fit else "")
        + f"), the weights chosen on validation ({chosen['accuracy']:.2f} % accuracy there)."
    )


TASKS = {"lm": LanguageModelingTask, "classifier": SequenceClassificationTask}


def task_for(config) -> Task:
    """The task a config names (`config.task`), on the data it names (`train_file`, `dataset_name` or `corpus`)."""
    return TASKS[config.task](config)
