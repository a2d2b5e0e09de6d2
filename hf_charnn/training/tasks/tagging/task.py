"""
`TokenClassificationTask`: one tag per character (`data.py` reads and derives the tags), its metrics (`tagging_report`:
character accuracy, per-tag precision / recall / F1, span-level F1) and the recipe sized to its training text. Its
settings: `TokenClassificationSettings` (`__init__.py`).
"""

import statistics

import numpy as np
import torch
from accelerate import PartialState

from ....card import CardWords, ModelIndex, describe_vocabulary, example_text
from ....data.labeled import PaddedBatches
from ....models.modeling_char_gru import CharGRUForTokenClassification, gather_to_front
from ... import linear
from ...recipes import Recipe, stop_only_cap
from ..base import Task
from . import LINEAR_EXTRA_COPIES, LINEAR_PART_FLAGS, LINEAR_PART_TAGS, SHUFFLED_COPIES
from .data import OUTSIDE, TaggedRows, load_tagged_data, shuffled_copies_phrase, with_shuffled_copies

CHARS_READ = 1_000_000  # the recipe's schedule: about this many training characters read
MIN_EPOCHS, MAX_EPOCHS = 3, 60
# The stop-only cap of the recipe (a slow machine's): this many training seconds a million characters read. The
# default tagger reads about 10k characters a second on 2 cores at ~185 GFLOP/s (measured: 1M in ~100 s).
CAP_SECONDS_PER_MCHAR = 150


# -- metrics --------------------------------------------------------------------------------------------------------
def spans_of(tags: list[str]) -> set[tuple[int, int, str]]:
    """
    The spans of a row's tags, (start, end excluded, label): BIO tags (`B-x` starts a span of `x`, `I-x` continues
    one, or starts one after another label), other tags as runs of one tag; `O` is outside every span.
    """
    spans, start, label = set(), None, None
    for position, tag in enumerate([*tags, OUTSIDE]):
        prefix, _, name = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
        continues = label is not None and name == label and prefix != "B" and tag != OUTSIDE
        if continues:
            continue
        if label is not None:
            spans.add((start, position, label))
            start, label = None, None
        if tag != OUTSIDE:
            start, label = position, name
    return spans


def _f1(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 100 * precision, 100 * recall, 100 * f1


def tagging_report(gold: list[list[int]], predicted: list[list[int]], label_names: list[str]) -> dict:
    """
    Character accuracy, each tag's precision / recall / F1 and support, their macro-F1, and span-level precision /
    recall / F1 (a span counts when its start, end and label are all right) over rows of tag ids.
    """
    flat_gold = np.concatenate([np.asarray(row, dtype=np.int64) for row in gold]) if gold else np.zeros(0, np.int64)
    flat_predicted = (
        np.concatenate([np.asarray(row, dtype=np.int64) for row in predicted]) if predicted else np.zeros(0, np.int64)
    )
    per_tag = {}
    for index, name in enumerate(label_names):
        is_gold, is_predicted = flat_gold == index, flat_predicted == index
        precision, recall, f1 = _f1(int((is_gold & is_predicted).sum()), int(is_predicted.sum()), int(is_gold.sum()))
        per_tag[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(is_gold.sum())}
    correct_spans = predicted_spans = gold_spans = 0
    for gold_row, predicted_row in zip(gold, predicted):
        expected = spans_of([label_names[i] for i in gold_row])
        found = spans_of([label_names[i] for i in predicted_row])
        correct_spans += len(expected & found)
        predicted_spans += len(found)
        gold_spans += len(expected)
    span_precision, span_recall, span_f1 = _f1(correct_spans, predicted_spans, gold_spans)
    return {
        "accuracy": 100 * float((flat_gold == flat_predicted).mean()) if len(flat_gold) else 0.0,
        "macro_f1": float(np.mean([tag["f1"] for tag in per_tag.values()])),
        "span_precision": span_precision,
        "span_recall": span_recall,
        "span_f1": span_f1,
        "spans": gold_spans,
        "chars": int(len(flat_gold)),
        "per_tag": per_tag,
    }


def evaluate_tagger(model, texts: list[str], gold: list[list[int]], label_names: list[str], batch: int = 64) -> dict:
    """`tagging_report` of a model's predictions for texts, predicted `batch` rows at a time."""
    predicted = []
    for start in range(0, len(texts), batch):
        predicted += model.predict_tags(texts[start : start + batch])
    return tagging_report(gold, predicted, label_names)


# -- the recipe -----------------------------------------------------------------------------------------------------
def tagger_recipe(
    chars: int, rows: int, presets: dict, derive: str | None, shuffled_copies: int | None, linear_asked: bool = False
) -> Recipe:
    """
    The default tagger, its schedule sized to the training text: about CHARS_READ characters read. Word boundaries
    train on the text and SHUFFLED_COPIES shuffled copies of its words (or the user's `shuffled_copies`), and have the
    linear part; other tags have it where the user's flags ask for it (`linear_asked`).
    """
    if shuffled_copies is None:
        shuffled_copies = SHUFFLED_COPIES if derive == "word-boundaries" else 0
    read = chars * (1 + shuffled_copies)
    epochs = int(np.clip(round(CHARS_READ / max(read, 1)), MIN_EPOCHS, MAX_EPOCHS))
    cap = stop_only_cap(epochs * read, CAP_SECONDS_PER_MCHAR)
    settings = {**presets["default"], "shuffled_copies": shuffled_copies, "epochs": epochs}
    settings.update(max_train_time=cap, fit_schedule_to_budget=False)
    copies = f" and {shuffled_copies_phrase(shuffled_copies)}" if shuffled_copies else ""
    reasons = [
        f"{chars:,} training characters in {rows:,} rows{copies}: the default tagger, {epochs} epochs (about "
        f"{CHARS_READ / 1e6:g}M characters read); a {cap} cap only stops a slow machine's run"
    ]
    if derive not in LINEAR_PART_TAGS and not linear_asked:
        settings["ngram_range"] = None
        reasons.append(
            "the GRU alone: the linear part over the n-grams around each character helps word boundaries, not these "
            "tags (--ngram-range 1 4 adds it)"
        )
    data = {"chars": chars, "rows": rows, "about": f"{chars:,} training characters in {rows:,} rows"}
    return Recipe(data=data, settings=settings, reasons=reasons)


# -- the task -------------------------------------------------------------------------------------------------------
class TokenClassificationTask(Task):
    """A tag per character of the tagged texts a config names; texts cut into rows, padded on the right."""

    model_class = CharGRUForTokenClassification

    def __init__(self, config):
        super().__init__(config)
        self.label_names: list[str] = []
        self.unshuffled_train = None  # the training rows before any shuffled copies (the linear part adds its own)
        self.linear_fit: dict | None = None  # what fitting the linear part measured (training/linear.py)

    def load(self):
        config = self.config
        data = load_tagged_data(config)
        self.label_names = data.label_names
        self.vocabulary, self.vocabulary_reason = data.vocabulary, data.vocabulary_reason
        self.description, self.fingerprint = data.description, data.fingerprint
        chars = sum(len(text) for text in data.train.texts)
        copies = config.shuffled_copies if "shuffled_copies" in config.explicit_settings else None
        linear_asked = any(name in config.explicit_settings for name in LINEAR_PART_FLAGS)
        recipe = tagger_recipe(chars, len(data.train.texts), type(config).presets, config.derive, copies, linear_asked)
        self.apply_recipe(recipe)
        self.unshuffled_train = data.train
        if config.shuffled_copies:
            data.train = with_shuffled_copies(data.train, config.shuffled_copies, config.max_length, config.seed)
        self.train_dataset = TaggedRows(data.train, data.vocabulary, data.label_names)
        self.validation_dataset = TaggedRows(data.validation, data.vocabulary, data.label_names)
        self.validation = (data.validation.texts, [row.tolist() for row in self.validation_dataset.labels])
        if data.test is not None:
            test_rows = TaggedRows(data.test, data.vocabulary, data.label_names)
            self.test = (data.test.texts, [row.tolist() for row in test_rows.labels])
        self.collate_fn = PaddedBatches(pad_id=data.vocabulary.size)

    def tokenizer(self, model_config):
        """
        The tokenizers-backed character tokenizer (same ids): its offsets and word ids let transformers'
        token-classification pipeline aggregate by word (`first`, `average`, `max`). A bytes model keeps the Python one.
        """
        from ....models.tokenization_char_gru import CharTokenizersBackend

        if model_config.vocab_kind == "bytes":
            return super().tokenizer(model_config)
        return CharTokenizersBackend.for_model(model_config)

    def start_lines(self):
        return [
            *super().start_lines(),
            f"tags: {', '.join(self.label_names)} ({len(self.train_dataset)} training rows"
            + (f", with {shuffled_copies_phrase(self.config.shuffled_copies)}" if self.config.shuffled_copies else "")
            + f", {len(self.validation[0])} validation rows)",
        ]

    def sequence_length(self) -> int:
        return int(statistics.median(len(ids) for ids in self.train_dataset.ids))

    def new_model(self):
        model = self.build_model(self.config.model_config(self.vocabulary, self.label_names), self.label_names)
        if model.ngram_linear is not None:
            # As the classifier's: the linear part is fitted first and frozen, the GRU trains on its own (its scores
            # alone in the loss and in validation), and the two are weighed on validation at the end.
            config = self.config
            copies = config.shuffled_copies + LINEAR_EXTRA_COPIES if config.shuffled_copies else 0
            split = self.unshuffled_train
            if copies:  # the GRU's copies (the same seed) and more
                split = with_shuffled_copies(split, copies, config.max_length, config.seed)
            rows = TaggedRows(split, self.vocabulary, self.label_names)
            count = len(rows) if config.max_train_rows is None else config.max_train_rows
            fit = self.linear_fit = linear.fit_window_ngram_linear(model, rows.ids[:count], rows.labels[:count])
            fit["shuffled_copies"] = copies
            read = [f"the text and {shuffled_copies_phrase(copies)}"] if copies else []
            if fit["characters"] < fit["characters_given"]:
                read.append(f"the first of {fit['characters_given']:,}: the fit's memory grows with them")
            PartialState().print(
                f"linear part: fitted on {fit['characters']:,} characters"
                + (f" ({', '.join(read)})" if read else "")
                + f" in {fit['seconds']:g} s, training accuracy {fit['train_accuracy']:g}%"
            )
            model.config.ngram_linear_scale = 0.0
        return model

    def finish_model(self, model):
        if model.ngram_linear is None:
            return {}
        gold = self.validation[1]
        recurrent, linear_scores = linear.tag_part_scores(model, self.validation_dataset.ids)
        lengths = np.cumsum([len(row) for row in gold])[:-1]

        def judge(logits):
            report = tagging_report(gold, np.split(logits.argmax(-1).numpy(), lengths), self.label_names)
            return report["span_f1"] + report["accuracy"], {
                "span_f1": report["span_f1"],
                "accuracy": report["accuracy"],
            }

        choice = linear.weigh_parts(model.config, recurrent, linear_scores, judge)
        chosen = choice["chosen"]
        PartialState().print(
            f"scores weighed on validation: {chosen['recurrent_scale']:g} x GRU + {chosen['ngram_linear_scale']:g} x "
            f"linear n-grams ({chosen['span_f1']:.2f} span F1, {chosen['accuracy']:.2f}% of characters right)"
        )
        return {"ngram_linear": {"fit": self.linear_fit, **choice}}

    def counts(self, batch, outputs):
        labels = batch["labels"]
        real = labels != -100
        return real.sum(), ((outputs.logits.argmax(-1) == labels) & real).sum()

    def train_metrics(self, loss, correct, targets):
        return {"train_accuracy": 100.0 * correct / max(targets, 1)}

    def validate(self, model, accelerator):
        gold, predicted, loss_sum, positions = [], [], 0.0, 0
        for batch in self.validation_loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"]
            # A loss sum a row, so that gather_for_metrics drops the repeated rows of an uneven last batch with it.
            losses = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none"
            ).view(labels.shape)
            predictions, labels, losses = accelerator.gather_for_metrics((logits.argmax(-1), labels, losses.sum(1)))
            for predicted_row, gold_row in zip(predictions.tolist(), labels.tolist()):
                length = sum(1 for tag in gold_row if tag != -100)
                gold.append(gold_row[:length])
                predicted.append(predicted_row[:length])
                positions += length
            loss_sum += float(losses.sum())
        report = tagging_report(gold, predicted, self.label_names)
        name = self.validation_name
        return {
            f"{name}_accuracy": report["accuracy"],
            f"{name}_span_f1": report["span_f1"],
            f"{name}_macro_f1": report["macro_f1"],
            f"{name}_loss": loss_sum / max(positions, 1),
        }

    def final_evaluation(self, model):
        results = {"results": evaluate_tagger(model, *self.validation, self.label_names)}
        if self.test is not None:
            results["test_results"] = evaluate_tagger(model, *self.test, self.label_names)
        return results

    def curve(self):
        return f"{self.validation_name}_span_f1", "validation span F1"

    def model_index(self):
        metrics = (("accuracy", "Character accuracy", "accuracy", 2), ("f1", "Span F1", "span_f1", 2))
        return ModelIndex("token-classification", metrics, on_test=True)

    def card_words(self, summary):
        config = self.config
        name = f"`{config.train_file.rsplit('/', 1)[-1]}`"
        tags = ", ".join(f"`{tag}`" for tag in self.label_names)
        derived = {
            "word-boundaries": f"the text of {name} with its spaces removed; each character is tagged `B-WORD` where "
            "a word starts, else `I-WORD` (the spans are the words)",
            "truecase": f"the text of {name} lowercased; each character is tagged `UPPER` where it was a capital",
        }
        data = derived.get(config.derive, f"the tagged texts of {name}")
        return CardWords(
            about=(
                f"A character-level GRU tagger trained with `hf_charnn` on {data}. It reads a text character by "
                f"character ({describe_vocabulary(self.vocabulary)}) and tags every character: {tags}."
            ),
            dataset_type="tagged texts",
            dataset_name=name.strip("`"),
            training_data=f"{data}; texts cut into rows of at most {config.max_length} characters"
            + (
                f", and {shuffled_copies_phrase(config.shuffled_copies)} in a seeded random order, so that each word "
                "is read beside new neighbours."
                if config.shuffled_copies
                else "."
            )
            + linear_words(summary, config),
            limits=(
                "A small character-level model: it sees spelling and the characters around each one, not meaning "
                f"beyond what its training texts teach. It reads only its vocabulary's symbols "
                f"({self.vocabulary.kind}). Check its per-tag scores above before relying on it."
            ),
            example=example_text(self.vocabulary, "sometexttotag"),
        )


def linear_words(summary: dict, config) -> str:
    """The card's words for a tagger with a linear part: what it reads and how the scores were weighed."""
    mix = summary.get("ngram_linear")
    if not mix:
        return ""
    chosen, fit = mix["chosen"], mix["fit"] or {}
    smallest, largest = config.ngram_range
    copies = fit.get("shuffled_copies")
    return (
        f" Scores: {chosen['recurrent_scale']:g} x the GRU's head + {chosen['ngram_linear_scale']:g} x a linear tagger "
        f"over the hashed {smallest}- to {largest}-grams within {config.ngram_window} characters each side of each "
        "character (a linear SVM's, fitted by liblinear on the training characters"
        + (f" and {shuffled_copies_phrase(copies)}" if copies else "")
        + (f", C={fit['c']:g}" if fit else "")
        + f"), the weights chosen on validation ({chosen['span_f1']:.2f} span F1 there)."
    )


class TaggerGraph(torch.nn.Module):
    """
    The tagger's ONNX graph (hf_charnn.export): (input_ids, attention_mask) -> logits at every position. The
    classifier's padded GRU loop, its outputs put back in place (zeros at padding, as the model's own forward leaves
    them) and through the head, and the linear part's scores added, if any (it reads the rows as they are).
    """

    padded = True
    logits_axes = {0: "batch", 1: "sequence"}

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        gathered, lengths = gather_to_front(input_ids, attention_mask)
        steps = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        backbone = self.model.char_gru
        hidden, _ = backbone.run_front_gathered(backbone.embeddings(gathered), torch.clamp(lengths, min=1))
        starts = torch.argmax(attention_mask.to(torch.int64), dim=1, keepdim=True)
        inside = ((steps >= starts) & (steps < starts + lengths[:, None])).to(hidden.dtype)
        back = torch.clamp(steps - starts, min=0)  # position p of a row holds its (p - start)-th character
        in_place = hidden.gather(1, back[..., None].expand(-1, -1, hidden.shape[-1])) * inside[..., None]
        return self.model.mix(self.model.classifier(in_place), input_ids, attention_mask)
