"""Configuration of the character-level GRU models (one config serves the classifier and the LM)."""

import logging
import re

from transformers import PretrainedConfig

CLASSIFIER_READOUTS = ("last", "pooled")


def check_ngram_settings(ngram_range, ngram_buckets, ngram_embedding_size=1, ngram_linear=False, ngram_window=None):
    """The one check of the n-gram settings (the config and the command line both call it): a ValueError."""
    if ngram_window is not None:
        if isinstance(ngram_window, bool) or not isinstance(ngram_window, int) or ngram_window < 0:
            raise ValueError(
                f"ngram_window {ngram_window!r}: the characters each side of a character whose n-grams a tagger's "
                "linear part reads; give a whole number of at least 0 (say 4)"
            )
        if not ngram_linear:
            raise ValueError("ngram_window places a tagger's linear part: it needs ngram_linear and an ngram_range")
    if ngram_range is None:
        if ngram_linear:
            raise ValueError("ngram_linear reads the text's n-grams: give an ngram_range too (say 1 4)")
        return
    if len(ngram_range) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in ngram_range):
        raise ValueError(f"ngram_range {list(ngram_range)}: give two whole numbers, the shortest and longest n-gram")
    if not 1 <= ngram_range[0] <= ngram_range[1]:
        raise ValueError(
            f"ngram_range {list(ngram_range)}: needs 1 <= min <= max (say 1 4: every 1- to 4-character n-gram)"
        )
    if ngram_window is not None and ngram_range[1] > 2 * ngram_window + 1:
        raise ValueError(
            f"ngram_range {list(ngram_range)} with ngram_window {ngram_window}: an n-gram of {ngram_range[1]} "
            f"characters does not fit in {2 * ngram_window + 1} (the character and {ngram_window} each side); widen "
            "the window or shorten the n-grams"
        )
    if ngram_buckets < 1:
        raise ValueError(f"ngram_buckets {ngram_buckets}: must be at least 1 (2**16 is the usual count)")
    if ngram_embedding_size < (0 if ngram_linear else 1):
        raise ValueError(
            f"ngram_embedding_size {ngram_embedding_size}: must be at least 1 (64 is the usual width; 0, no bag, only "
            "beside ngram_linear)"
        )


def check_position_labels(config):
    """
    The one check of labels per position (prefix labels, `CharGRUForSequenceClassification.forward`): the head then
    reads the state after every prefix, which only a one-way GRU read at its last state, with no n-grams of the whole
    text beside it, has. A ValueError.
    """
    if config.bidirectional or config.classifier_readout != "last" or config.ngram_range:
        raise ValueError(
            "prefix_labels train the head on the state after every prefix: they need a one-way GRU read at its last "
            "state, with no n-grams (not bidirectional, classifier_readout last, no ngram_range)"
        )


MULTI_LABEL = "multi_label_classification"  # transformers' problem_type: a sigmoid a label, BCE loss


def check_multi_label(config):
    """
    A multi-label classifier's settings: its thresholds one probability in (0, 1) a label, no other model with any, and
    no zero-shot head (its groups' masses are one distribution). A ValueError.
    """
    if config.problem_type == MULTI_LABEL and config.symbol_groups:
        raise ValueError("a symbol-group head scores one distribution over its groups: it cannot be multi-label")
    thresholds = config.label_thresholds
    if thresholds is None:
        return
    if config.problem_type != MULTI_LABEL:
        raise ValueError(f"label_thresholds are a multi-label classifier's: set problem_type to {MULTI_LABEL!r}")
    if len(thresholds) != config.num_labels or not all(0.0 < value < 1.0 for value in thresholds):
        raise ValueError(
            f"label_thresholds {thresholds}: give one probability between 0 and 1 for each of the {config.num_labels} "
            "labels, in label-id order"
        )


class _PaddingRowIsNotAnError(logging.Filter):
    """
    transformers warns when a config's `pad_token_id` is not a predicted symbol (`0 <= id < vocab_size`). These models'
    padding id is `vocab_size` on purpose: the embedding's extra row, never predicted, skipped through
    `attention_mask`. Its validators are bound to the base class (they cannot be overridden), so exactly that warning
    (padding one past the vocabulary) is dropped; any other id out of range is still reported.
    """

    PATTERN = re.compile(r"pad_token_id must be .*between 0 and (\d+)\), got (\d+)")

    def filter(self, record: logging.LogRecord) -> bool:
        found = self.PATTERN.search(record.getMessage())
        return not (found and int(found.group(2)) == int(found.group(1)) + 1)


_config_logger = logging.getLogger("transformers.configuration_utils")
if not any(isinstance(existing, _PaddingRowIsNotAnError) for existing in _config_logger.filters):
    _config_logger.addFilter(_PaddingRowIsNotAnError())


class CharGRUConfig(PretrainedConfig):
    r"""
    Configuration for [`CharGRUForSequenceClassification`] and [`CharGRUForCausalLM`].

    Args:
        vocab_size (`int`, defaults to 27):
            Number of symbols the models read and the LM predicts (the vocabulary's size: 27 for text8, 256 for
            bytes). The embedding has one more row, for the padding id (`vocab_size`), which the LM never predicts.
        vocab_kind (`str`, defaults to `"text8"`):
            The vocabulary (see `tokenization_char_gru.Vocabulary`): `"text8"`, `"chars"` (the characters in
            `characters`, plus `<unk>` when `unk_token_id` is set) or `"bytes"` (the 256 UTF-8 byte values).
        characters (`str`, *optional*):
            A `chars` vocabulary's characters, in id order: the model's own strings are encoded with it.
        unk_token_id (`int`, *optional*):
            A `chars` vocabulary's `<unk>` id (its last), where characters outside it go.
        embedding_size (`int`, defaults to 64):
            Size of the character embeddings. The embedding table has `vocab_size + 1` rows: the last is the
            tokenizer's padding id (`vocab_size`), which the models skip through `attention_mask`.
        hidden_size (`int`, defaults to 512):
            Size of the GRU state.
        num_hidden_layers (`int`, defaults to 1):
            Number of stacked GRU layers.
        dropout (`float`, defaults to 0.0):
            Dropout on the embeddings, between GRU layers and on the GRU outputs (training only).
        initializer_range (`float`, defaults to 1.0):
            Standard deviation of the embedding initialisation (1.0, as `nn.Embedding` does).
        symbol_groups (`dict[str, str]`, *optional*):
            Classifier only: a zero-shot head made from an LM (`CharGRUForSequenceClassification.from_lm`). The head
            is the LM's head over the whole vocabulary, and label `i` (the `i`-th group, named as its key) has the log
            probability mass of the group's next symbols (the value: a string of them). Folders saved with the earlier
            `vowel_mass_head: true` load as the groups `consonant` (the 21 text8 consonants) and `vowel` (`aeiou`).
        bidirectional (`bool`, defaults to `False`):
            Classifier only: the GRU also reads each text backwards (each layer's output is both directions' states,
            `2 * hidden_size`). An LM predicts left to right and refuses it.
        classifier_readout (`str`, defaults to `"last"`):
            Classifier only: what the head reads. `"last"`: the last layer's state after the last real character (with
            `bidirectional`, also the backward state after the first). `"pooled"`: the mean and the maximum of the last
            layer's outputs over the real characters (padding excluded), side by side.
        ngram_range (`list[int]`, *optional*):
            Classifier only: also read the text's hashed character n-grams of these lengths (`[1, 4]`: 1- to
            4-grams), counted over the text with a boundary mark at each end, as a bag beside the GRU's readout: each
            n-gram is hashed (a polynomial hash of its ids, the same in PyTorch and in the ONNX graph) into one of
            `ngram_buckets` rows of an embedding, and the rows' mean goes to the head with the readout. Computed from
            `input_ids` inside the model, so the tokenizer and every pipeline are unchanged. None: no bag.
        ngram_buckets (`int`, defaults to 65536):
            Rows of the n-gram embedding (hash buckets).
        ngram_embedding_size (`int`, defaults to 64):
            Width of the n-gram embedding (0: no bag, with `ngram_linear`).
        ngram_linear (`bool`, defaults to `False`):
            Classifier only: also a linear classifier over the same hashed n-grams, as a char n-gram SVM reads them:
            each n-gram weighted by its bucket's inverse document frequency (the `idf` buffer, from the training
            texts), the text's vector normalised to length 1, one row of `num_labels` weights a bucket. Its scores are
            added to the head's, `ngram_linear_scale * linear + recurrent_scale * head`. The training loop fits it
            first (`hf_charnn.training.linear`), like LinearSVC, and the scales are chosen on validation at the end.
        ngram_window (`int`, *optional*):
            Tagger only (and then required with `ngram_range`): its linear part is a linear tagger over the hashed
            n-grams (of `ngram_range`'s lengths) that lie within this many characters each side of each character,
            each hashed with its place relative to it; one row of `num_labels` weights a bucket, summed (no idf, no
            scaling). It is fitted like the classifier's, one linear SVM per tag on the training rows' characters.
        ngram_linear_scale (`float`, defaults to 1.0):
            Weight of the linear n-gram scores in the logits.
        recurrent_scale (`float`, defaults to 1.0):
            Weight of the head's scores (GRU readout and bag) in the logits (0: the linear part alone decides).
        label_thresholds (`list[float]`, *optional*):
            Classifier with `problem_type="multi_label_classification"` only: each label's probability (the sigmoid of
            its logit) at or above which a text has that label, in label-id order (tuned on validation when the model
            was trained). None: 0.5 for every label. A single-label classifier predicts the most probable label.
        use_cache (`bool`, defaults to `True`):
            Whether the LM returns its GRU state, so that `generate()` feeds one character a step.
    """

    model_type = "char_gru"

    def __init__(
        self,
        vocab_size: int = 27,
        vocab_kind: str = "text8",
        characters: str | None = None,
        unk_token_id: int | None = None,
        embedding_size: int = 64,
        hidden_size: int = 512,
        num_hidden_layers: int = 1,
        dropout: float = 0.0,
        initializer_range: float = 1.0,
        use_cache: bool = True,
        symbol_groups: dict[str, str] | None = None,
        bidirectional: bool = False,
        classifier_readout: str = "last",
        ngram_range: list[int] | None = None,
        ngram_buckets: int = 65536,
        ngram_embedding_size: int = 64,
        ngram_linear: bool = False,
        ngram_window: int | None = None,
        ngram_linear_scale: float = 1.0,
        recurrent_scale: float = 1.0,
        label_thresholds: list[float] | None = None,
        pad_token_id: int | None = None,
        **kwargs,
    ):
        if kwargs.pop("vowel_mass_head", False) and symbol_groups is None:  # saved before symbol_groups (tested)
            symbol_groups = {"consonant": "bcdfghjklmnpqrstvwxyz", "vowel": "aeiou"}
        if symbol_groups:
            kwargs["id2label"] = dict(enumerate(symbol_groups))
            kwargs["label2id"] = {name: index for index, name in enumerate(symbol_groups)}
        self.vocab_size = vocab_size
        self.vocab_kind = vocab_kind
        self.characters = characters
        self.unk_token_id = unk_token_id
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.symbol_groups = dict(symbol_groups) if symbol_groups else None
        if classifier_readout not in CLASSIFIER_READOUTS:
            raise ValueError(
                f"classifier_readout {classifier_readout!r}: choose one of {', '.join(CLASSIFIER_READOUTS)}"
            )
        if ngram_range is not None:
            ngram_range = [int(n) if isinstance(n, float) and n.is_integer() else n for n in ngram_range]
        check_ngram_settings(ngram_range, ngram_buckets, ngram_embedding_size, ngram_linear, ngram_window)
        self.ngram_range = list(ngram_range) if ngram_range is not None else None
        self.ngram_buckets = ngram_buckets
        self.ngram_embedding_size = ngram_embedding_size
        self.ngram_linear = bool(ngram_linear)
        self.ngram_window = ngram_window
        self.ngram_linear_scale = float(ngram_linear_scale)
        self.recurrent_scale = float(recurrent_scale)
        self.bidirectional = bool(bidirectional)
        self.classifier_readout = classifier_readout
        # Declared because v5's base config no longer does. The models set it to the tokenizer's padding id
        # (`vocab_size`, the embedding's extra row), so that Trainer finds nothing to align; padding itself is read
        # from `attention_mask`, and the LM never predicts it.
        self.pad_token_id = pad_token_id
        # v5's base config declares no tying attribute: the LM head is its own matrix (vocab_size x hidden).
        self.tie_word_embeddings = False
        self.label_thresholds = [float(value) for value in label_thresholds] if label_thresholds else None
        super().__init__(**kwargs)
        check_multi_label(self)
