"""
`SequenceClassificationTask`: a label per text, or a set of labels per text (multi-label: a sigmoid a label, BCE, and
each label's threshold tuned on validation), for the labeled texts a config names (`data/labeled.py`); texts of any
length in padded batches. Its settings: `SequenceClassificationSettings` (`__init__.py`).
"""

import statistics
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from ....card import CardWords, ModelIndex, data_description, describe_vocabulary, example_text
from ....data.labeled import LabeledRows, LengthGroupedBatches, PaddedBatches, load_labeled_data
from ....errors import UserError
from ....evaluation import classification_report, evaluate_labeled, multi_label_report
from ....models.configuration_char_gru import MULTI_LABEL
from ....models.modeling_char_gru import CharGRUForSequenceClassification, CharGRUOutput, gather_to_front
from ... import linear, recipes
from ..base import Task
from . import unlabeled


class SequenceClassificationTask(Task):
    """A label per text, for the labeled texts a config names; texts of any length, padded on the right."""

    model_class = CharGRUForSequenceClassification

    def __init__(self, config):
        super().__init__(config)
        self.label_names: list[str] = []
        self.class_weights = None
        self.statistics: dict = {}  # of the training texts (recipes.labeled_statistics)
        self.linear_fit: dict | None = None  # what fitting the linear n-gram part measured (training/linear.py)
        self.multi_label = False  # any number of labels a text (the data says so: data/labeled.py)
        self.unlabeled_record: dict = {}  # the LM trained first on unlabeled texts (unlabeled.py)

    def before_load(self):
        config = self.config
        if config.unlabeled_file or config.unlabeled_dataset:
            # The labeled data is read (and checked) first: nothing trains on data the classifier would refuse.
            train_texts = load_labeled_data(config).train.texts
            self.unlabeled_record = unlabeled.train_unlabeled_lm(config, train_texts)

    def summary_extras(self):
        extras = super().summary_extras()
        if self.unlabeled_record:
            extras["unlabeled_lm"] = self.unlabeled_record
        return extras

    def load(self):
        config = self.config
        labeled = load_labeled_data(config)
        self.vocabulary, self.vocabulary_reason = labeled.vocabulary, labeled.vocabulary_reason
        self.label_names, self.description, self.fingerprint = (
            labeled.label_names,
            labeled.description,
            labeled.fingerprint,
        )
        train, self.multi_label = labeled.train, labeled.multi_label
        self.statistics = recipes.labeled_statistics(
            [len(text) for text in train.texts],
            [label[0] for label in train.labels] if self.multi_label else train.labels,  # (sizes the recipe only)
            len(self.label_names),
        )
        self.apply_recipe(recipes.classifier_recipe(self.statistics))
        if self.multi_label and config.class_weight:
            raise UserError(
                f"--class-weight {config.class_weight}: weighs one label against the others, and {train.source} is "
                "multi-label (each label is its own yes / no); leave it out"
            )
        if config.class_weight == "balanced":  # each label's loss weighed by 1 / its share (sklearn's "balanced")
            counts = np.bincount(train.labels, minlength=len(self.label_names)).astype(np.float64)
            self.class_weights = torch.tensor(
                np.where(counts > 0, len(train.labels) / (len(counts) * np.maximum(counts, 1)), 0.0),
                dtype=torch.float32,
            )
        num_labels = len(self.label_names) if self.multi_label else None  # (multi-label: 0 / 1 rows)
        self.train_dataset = LabeledRows(train, labeled.vocabulary, config.max_length, num_labels)
        self.validation_dataset = LabeledRows(labeled.validation, labeled.vocabulary, config.max_length, num_labels)
        cut = (lambda texts: [text[: config.max_length] for text in texts]) if config.max_length else list
        self.validation = (cut(labeled.validation.texts), labeled.validation.labels)
        self.test = (cut(labeled.test.texts), labeled.test.labels) if labeled.test is not None else None
        self.collate_fn = PaddedBatches(pad_id=labeled.vocabulary.size, multi_label=self.multi_label)

    def start_lines(self):
        return [
            *super().start_lines(),
            f"labels{' (multi-label)' if self.multi_label else ''}: {', '.join(self.label_names)} "
            f"({len(self.train_dataset)} training texts, "
            f"{len(self.validation[0])} validation texts)",
        ]

    def batch_sampler(self, dataset):
        if not self.config.group_by_length:
            return None
        rows = dataset.indices if isinstance(dataset, torch.utils.data.Subset) else range(len(dataset))
        base = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
        return LengthGroupedBatches([len(base.ids[row]) for row in rows], self.config.batch_size, self.config.seed)

    def loss(self, batch, outputs):
        labels = batch["labels"]
        if self.class_weights is None or labels.dim() == 2:  # (multi-label: no class weights, refused in load)
            return outputs.loss
        weights = self.class_weights.to(outputs.logits.device)
        return torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights)

    def sequence_length(self) -> int:
        return int(statistics.median(len(ids) for ids in self.train_dataset.ids))

    def new_model(self):
        model_config = self.config.model_config(self.vocabulary, self.label_names)
        if self.multi_label:
            model_config.problem_type = MULTI_LABEL
        model = self.build_model(model_config, self.label_names)
        if model.ngram_linear is not None:
            # The linear n-gram part is fitted first, to convergence, and frozen; the GRU then trains on its own
            # (its scores alone in the loss and in validation) and the two are weighed on validation at the end.
            rows = self.train_dataset.ids
            if self.config.max_train_rows is not None:
                rows = rows[: self.config.max_train_rows]
            fit = self.linear_fit = linear.fit_ngram_linear(
                model, rows, self.train_dataset.labels[: len(rows)], seed=self.config.seed
            )
            read = f"{fit['rows']:,} texts"
            if fit["rows"] < fit["rows_given"]:
                read = (
                    f"a random sample of {fit['rows']:,} of {fit['rows_given']:,} texts ({fit['characters']:,} of "
                    f"{fit['characters_given']:,} characters: the fit's memory grows with them)"
                )
            PartialState().print(
                f"linear n-gram part: fitted on {read} ({fit['buckets_used']:,} buckets used) in {fit['seconds']:g} s, "
                f"training accuracy {fit['train_accuracy']:g}%",
            )
            model.config.ngram_linear_scale = 0.0
        return model

    def tokenizer_max_length(self):
        return self.config.max_length  # texts were cut to this length in training: pipelines cut them too

    def finish_model(self, model):
        if model.ngram_linear is None:
            return {}
        rows = self.validation_dataset.ids
        choice = linear.choose_logit_scales(model, rows, self.validation_dataset.labels, self.label_names)
        chosen = choice["chosen"]
        first = f"{chosen['micro_f1']:.2f} micro-F1" if self.multi_label else f"{chosen['accuracy']:.2f}% accuracy"
        PartialState().print(
            f"scores weighed on validation: {chosen['recurrent_scale']:g} x GRU + {chosen['ngram_linear_scale']:g} x "
            f"linear n-grams ({first}, {chosen['macro_f1']:.2f} macro-F1)"
        )
        return {"ngram_linear": {"fit": self.linear_fit, **choice}}

    def counts(self, batch, outputs):
        targets = batch["labels"]
        if self.multi_label:  # a text counts as right when its whole label set is (the exact-match ratio)
            exact = ((outputs.logits > 0) == targets.bool()).all(dim=-1)
            return torch.tensor(len(targets)), exact.sum()
        if targets.dim() == 2:
            targets = targets[:, -1]  # one label per position (prefix labels): accuracy is about the whole text
        return (targets != -100).sum(), (outputs.logits.argmax(-1) == targets).sum()

    def train_metrics(self, loss, correct, targets):
        return {"train_accuracy": 100.0 * correct / max(targets, 1)}

    def validate(self, model, accelerator):
        gold, predicted, loss_sum = [], [], 0.0
        for batch in self.validation_loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits.float()
            labels = batch["labels"]
            if self.multi_label:  # each label's sigmoid at 0.5 while training (thresholds are tuned at the end)
                losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
                predictions, losses = logits > 0, losses.mean(dim=-1)
            else:
                if labels.dim() == 2:
                    labels = labels[:, -1]
                losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
                predictions = logits.argmax(-1)
            predictions, labels, losses = accelerator.gather_for_metrics((predictions, labels, losses))
            gold += labels.tolist()
            predicted += predictions.tolist()
            loss_sum += float(losses.sum())
        if self.multi_label:  # (0 / 1 rows)
            report = multi_label_report(np.asarray(gold), np.asarray(predicted), self.label_names)
        else:
            report = classification_report(gold, predicted, self.label_names)
        name = self.validation_name
        return {
            f"{name}_accuracy": report["accuracy"],
            f"{name}_macro_f1": report["macro_f1"],
            **({f"{name}_micro_f1": report["micro_f1"]} if self.multi_label else {}),
            f"{name}_loss": loss_sum / max(len(gold), 1),
        }

    def final_evaluation(self, model):
        results = {"results": evaluate_labeled(model, *self.validation, self.label_names)}
        if self.test is not None:
            results["test_results"] = evaluate_labeled(model, *self.test, self.label_names)
        return results

    def curve(self):
        if self.multi_label:
            return f"{self.validation_name}_micro_f1", "validation micro-F1 (%, thresholds at 0.5)"
        return f"{self.validation_name}_accuracy", "validation accuracy (%)"

    def model_index(self):
        if self.multi_label:
            metrics = (
                ("f1", "Micro F1", "micro_f1", 2),
                ("f1", "Macro F1", "macro_f1", 2),
                ("accuracy", "Exact match", "exact_match", 2),
            )
        else:
            metrics = (("accuracy", "Accuracy", "accuracy", 2), ("f1", "Macro F1", "macro_f1", 2))
        return ModelIndex("text-classification", metrics)

    def card_words(self, summary):
        config, data = self.config, data_description(self.config, "labeled texts")
        labels = ", ".join(f"`{label}`" for label in self.label_names)
        unseen = (
            "; a character it was not trained on is an error"
            if self.vocabulary.kind == "chars" and not self.vocabulary.unk
            else ""
        )
        return CardWords(
            about=(
                f"A character-level GRU text classifier trained with `hf_charnn` on {data['train']}: it reads a text "
                f"character by character ({describe_vocabulary(self.vocabulary)}) and predicts "
                + (
                    f"which of {len(self.label_names)} labels ({labels}) a text has, any number of them (multi-label: "
                    "each label's sigmoid probability; a text has the labels whose probability reaches their "
                    "threshold, `label_thresholds` in config.json, tuned on validation)."
                    if self.multi_label
                    else f"one of {len(self.label_names)} labels ({labels})."
                )
            ),
            dataset_type=data["type"],
            dataset_name=data["name"],
            training_data=f"{data['train']}, labels from its `{config.label_column}` column, texts from "
            f"`{config.text_column}`.{unlabeled_words(summary)}{mix_words(summary)}",
            limits=(
                "A small character-level model: it sees spelling, case and punctuation, not meaning beyond what its "
                f"training texts teach. It reads only its vocabulary's symbols ({self.vocabulary.kind}){unseen}. Check "
                "its per-label scores above before relying on it."
            ),
            example=example_text(self.vocabulary, "some text to classify"),
            not_used=("prefix_labels",),  # (the exercise's default preset sets it; it does nothing for one's labels)
        )


def unlabeled_words(summary: dict) -> str:
    """The card's words for a classifier started from an LM of unlabeled texts."""
    record = summary.get("unlabeled_lm")
    if not record:
        return ""
    return (
        f" First a character LM was trained on {record['texts']:,} unlabeled texts ({Path(record['source']).name}) "
        f"and the training texts, for {record['max_train_time']} (saved beside the model, `{record['folder']}/`); "
        "the classifier started from its embedding and GRU."
    )


def mix_words(summary: dict) -> str:
    """The card's words for a classifier with a linear n-gram part: how its scores were weighed."""
    mix = summary.get("ngram_linear")
    if not mix:
        return ""
    chosen, fit = mix["chosen"], mix["fit"] or {}
    if "micro_f1" in chosen:  # multi-label: so were each label's threshold
        there = f"{chosen['micro_f1']:.2f} % micro-F1, with each label's threshold tuned"
    else:
        there = f"{chosen['accuracy']:.2f} % accuracy"
    texts = "the training texts"
    if fit.get("rows_given", 0) > fit.get("rows", 0):  # (a sample: more characters than the fit holds)
        texts = f"a random sample of {fit['rows']:,} of the {fit['rows_given']:,} training texts"
    return (
        f" Scores: {chosen['recurrent_scale']:g} x the GRU's head + {chosen['ngram_linear_scale']:g} x a linear "
        f"classifier over the same hashed n-grams (an n-gram SVM's, fitted by liblinear on {texts}"
        + (f", C={fit['c']:g}" if fit else "")
        + f"), the weights chosen on validation ({there} there)."
    )


class ClassifierGraph(torch.nn.Module):
    """
    The classifier's ONNX graph (hf_charnn.export): (input_ids, attention_mask) -> logits. Each row's real characters
    (one contiguous run, padded on either side) are gathered to the front and each layer and direction reads the whole
    width (the backward one over each row reversed): padding after the real characters cannot reach them.
    """

    padded = True
    logits_axes = {0: "batch"}

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        gathered, lengths = gather_to_front(input_ids, attention_mask)
        steps = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        real = (steps < lengths[:, None]).to(torch.int64)
        backbone = self.model.char_gru
        # The model's own padded path, less its checks and the putting back (the readout reads rows in front).
        hidden, state = backbone.run_front_gathered(backbone.embeddings(gathered), torch.clamp(lengths, min=1))
        outputs = CharGRUOutput(last_hidden_state=hidden * real[..., None].to(hidden.dtype), state=state)
        # The readout (last state or mean + max over the real positions), the n-gram bag and linear part if any.
        return self.model._logits(outputs, real, gathered)
