"""
`LanguageModelingTask`: next-symbol prediction on the corpus a config names (`data/corpus.py`), read as
`batch_size` TBPTT streams of `chunk_size` windows. Its settings: `LanguageModelingSettings` (`__init__.py`).
"""

import math

import numpy as np
import torch

from ....card import CardWords, ModelIndex, data_description
from ....data.corpus import load_corpus
from ....data.windows import LMWindows
from ....dynamic_evaluation import REPORT_CHARS, STATS_CHARS, evaluate_dynamic, gradient_statistics, save_statistics
from ....errors import DataError
from ....evaluation import bits_per_symbol, evaluate_lm, score_text
from ....models.modeling_char_gru import CharGRUForCausalLM
from ... import recipes
from ..base import Task

EXACT_SCORING_CHARS = 20_000  # validation texts up to this long are scored exactly (one stream)
CHARS_PER_SCORING_STREAM = 20_000


def scoring_streams(config, chars: int) -> int:
    """Streams for scoring a validation text: exact (1) for short texts, then one per 20k characters, at most 64."""
    if config.eval_streams:
        return config.eval_streams
    return 1 if chars <= EXACT_SCORING_CHARS else min(64, chars // CHARS_PER_SCORING_STREAM)


class LanguageModelingTask(Task):
    """
    Next-symbol prediction on the corpus a config names, read as `batch_size` TBPTT streams of `chunk_size` windows.
    """

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
            f"{name}_{self.rate}": bits_per_symbol(log_prob, len(text)),
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

    def model_index(self):
        rate_name = "Bits per byte" if self.rate == "bpb" else "Bits per character"
        metrics = (("perplexity", "Perplexity", "perplexity", 4), (self.rate, rate_name, self.rate, 4))
        return ModelIndex("text-generation", metrics, on_test=True)

    def card_words(self, summary):
        data = data_description(self.config, "text")
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


class LanguageModelStep(torch.nn.Module):
    """
    The LM's ONNX graph (hf_charnn.export): (input_ids, state) -> (logits, state_out), the forward pass with the state
    carried in and out.
    """

    padded = False  # it reads a state, not an attention mask
    logits_axes = {0: "batch", 1: "sequence"}

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, state):
        outputs = self.model.char_gru(input_ids, state=state, return_dict=True)
        return self.model.lm_head(outputs.last_hidden_state), outputs.state
