"""
Character-level GRU models: a shared embedding + GRU backbone, a classifier head (any label set, or a zero-shot head
over groups of an LM's next symbols), a tagger head (a label per symbol) and a next-symbol LM head, in the layout of
transformers' own recurrent models (RWKV, Mamba).

String interfaces live on the models themselves: `predict(text)` / `predict_batch` / `predict_proba` on the
classifier, `predict_tags` on the tagger, `get_next_char_log_probs(context)` / `get_log_prob_sequence(next_chars,
context)` / `score_texts` on the LM. They take strings in the model's own vocabulary (text8, chars or bytes, recorded
in its config: `model.vocabulary`) and encode them with a vectorised lookup, so no tokenizer is needed. This file, the
configuration and the tokenization file travel with every saved model (remote code): they import only each other,
torch, numpy and transformers.
"""

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, LinearAttentionLayer
from transformers.generation.stopping_criteria import MaxLengthCriteria, StoppingCriteriaList
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_char_gru import MULTI_LABEL, CharGRUConfig, check_position_labels
from .tokenization_char_gru import Vocabulary


def pad_ids(rows: list, pad_id: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Right-padded `input_ids` and `attention_mask` (int64) of id rows (arrays or tensors of any length): the one padder
    of hf_charnn (training batches, the models' string methods). The models never read the padding id.
    """
    width = max(1, max((len(row) for row in rows), default=0))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.as_tensor(row)
        attention_mask[index, : len(row)] = 1
    return input_ids.to(device), attention_mask.to(device)


def _pad_batch(texts: list, vocabulary: Vocabulary, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`pad_ids` of strings (or id arrays) in a model's vocabulary."""
    rows = [vocabulary.encode(text) if isinstance(text, str) else text for text in texts]
    return pad_ids(rows, vocabulary.size, device)


@dataclass
class CharGRUOutput(ModelOutput):
    """
    Output of [`CharGRUModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            The last GRU layer's output at every position (zeros at padded positions); `2 * hidden_size` wide for a
            bidirectional GRU (forward, then backward).
        state (`torch.FloatTensor` of shape `(num_hidden_layers, batch_size, hidden_size)`):
            The GRU state after each row's last real character: pass it back as `state` to continue the text.
            (A bidirectional GRU's has `2 * num_hidden_layers` rows, as `nn.GRU` gives them.)
    """

    last_hidden_state: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None


@dataclass
class CharGRUCausalLMOutput(ModelOutput):
    """
    Output of [`CharGRUForCausalLM`].

    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` or `shift_labels` is given):
            Mean next-character cross entropy (nats per character).
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            Next-symbol scores over exactly the vocabulary's symbols (27 for text8), at every position.
        cache (`CharGRUCache`, *optional*):
            The GRU state after the input as a transformers `Cache` (a recurrent layer a GRU layer), returned when
            `use_cache` is on: the name `generate()` uses for it; it feeds it back so that each new character costs one
            GRU step, and beam search reorders it.
        state (`torch.FloatTensor` of shape `(num_hidden_layers, batch_size, hidden_size)`, *optional*):
            The same state as one tensor (what the scorers, dynamic evaluation and the ONNX step graph read; the name
            folders and code of earlier releases use).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Cache | None = None
    state: torch.FloatTensor | None = None


class CharGRUCache(Cache):
    """
    The GRU's recurrent state as a transformers `Cache`, as transformers keeps Mamba's: one `LinearAttentionLayer` a
    GRU layer, its recurrent state `(batch_size, hidden_size)`. `reorder_cache` (beam search) and `reset` are the
    base class's; `state()` and `update_state` read and write all layers as one `(num_layers, batch, hidden)` tensor.
    """

    def __init__(self, num_layers: int):
        super().__init__(layers=[LinearAttentionLayer() for _ in range(num_layers)])

    @classmethod
    def from_state(cls, state: torch.Tensor) -> "CharGRUCache":
        cache = cls(state.shape[0])
        cache.update_state(state)
        return cache

    def update_state(self, state: torch.Tensor):
        for index, layer_state in enumerate(state.unbind(0)):
            layer = self.layers[index]
            if layer.is_recurrent_states_initialized[0] and layer.recurrent_states[0].shape != layer_state.shape:
                layer.reset()  # another batch: the state is stored anew, not copied into the old one's shape
                layer.is_recurrent_states_initialized[0] = False
            layer.update_recurrent_state(layer_state, 0)

    def has_state(self) -> bool:
        """Whether a text was read into it (a check per generation step: it stacks nothing)."""
        return bool(self.layers) and self.layers[0].is_recurrent_states_initialized[0]

    def state(self) -> torch.Tensor | None:
        """Every layer's state, `(num_layers, batch_size, hidden_size)`; None before any text was read."""
        if not self.has_state():
            return None
        return torch.stack([layer.recurrent_states[0] for layer in self.layers])

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # (a recurrent state has no length: generate() feeds the newest token whatever this says)


NGRAM_INIT_STD = 0.05


class NgramEmbedding(nn.Embedding):
    """The n-gram bag's rows (its own class, so that `_init_weights` gives them their own scale)."""


class NgramLabelWeights(nn.Embedding):
    """The linear n-gram classifier's weights, a row of label scores a bucket (zeros until it is fitted)."""


class CharGRUPreTrainedModel(PreTrainedModel):
    config: CharGRUConfig
    config_class = CharGRUConfig
    base_model_prefix = "char_gru"
    main_input_name = "input_ids"
    _no_split_modules = ["CharGRUModel"]

    def __init__(self, config: CharGRUConfig, *inputs, **kwargs):
        # The tokenizer's special ids, in the config before transformers copies it into the generation config: padding
        # is `vocab_size` (the embedding's extra row), the start symbol is the one texts are scored after (a space).
        # Trainer, generate() and pipelines then find them equal to the tokenizer's and warn about nothing.
        if config.pad_token_id is None:
            config.pad_token_id = config.vocab_size
        if getattr(config, "bos_token_id", None) is None:
            config.bos_token_id = Vocabulary.from_config(config).start_id
        super().__init__(config, *inputs, **kwargs)

    def mix(self, head: torch.Tensor, input_ids: torch.LongTensor, attention_mask) -> torch.Tensor:
        """
        The head's scores, and with a linear n-gram part (a classifier's or a tagger's `ngram_linear`) its scores
        added, each at its config scale: `recurrent_scale * head + ngram_linear_scale * linear`.
        """
        ngram_linear = getattr(self, "ngram_linear", None)
        if ngram_linear is None or self.config.ngram_linear_scale == 0:
            return head
        linear = ngram_linear(input_ids, attention_mask).to(head.dtype)
        return self.config.recurrent_scale * head + self.config.ngram_linear_scale * linear

    @property
    def vocabulary(self) -> Vocabulary:
        """The symbols this model reads and predicts, from its config."""
        key = (self.config.vocab_kind, self.config.characters, self.config.unk_token_id)
        cached = self.__dict__.get("_vocabulary")
        if cached is None or cached[0] != key:
            vocabulary = Vocabulary.from_config(self.config)
            if vocabulary.size != self.config.vocab_size:
                raise ValueError(
                    f"the config's vocabulary ({vocabulary.kind}, {vocabulary.size} symbols) does not match its "
                    "vocab_size "
                    f"{self.config.vocab_size}; re-save the model with a matching tokenizer"
                )
            self.__dict__["_vocabulary"] = cached = (key, vocabulary)
        return cached[1]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        # transformers' default init skips nn.GRU; the helpers from `transformers.initialization` leave
        # loaded tensors alone, so a checkpoint's weights survive from_pretrained.
        if isinstance(module, NgramLabelWeights):
            init.zeros_(module.weight)
        elif isinstance(module, NgramEmbedding):
            # Small rows, as fastText's: a text's bag is a mean of a few dozen of them and starts near zero.
            init.normal_(module.weight, std=NGRAM_INIT_STD)
        elif isinstance(module, nn.GRU):
            bound = module.hidden_size**-0.5  # PyTorch's own GRU init
            for parameter in module.parameters():
                init.uniform_(parameter, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=self.config.initializer_range)
        elif isinstance(module, nn.Linear):
            bound = module.in_features**-0.5
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.zeros_(module.bias)


class CharGRUModel(CharGRUPreTrainedModel):
    """Embedding + stacked GRU: the backbone both heads share (so an LM's backbone loads into a classifier)."""

    def __init__(self, config: CharGRUConfig):
        super().__init__(config)
        # One extra row for the tokenizer's padding id (vocab_size); padded positions are skipped via attention_mask.
        self.embeddings = nn.Embedding(config.vocab_size + 1, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_hidden_layers,
            batch_first=True,
            dropout=config.dropout if config.num_hidden_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        self.post_init()

    @property
    def output_size(self) -> int:
        """The size of each position's output (both directions' states side by side when bidirectional)."""
        return self.config.hidden_size * (2 if self.config.bidirectional else 1)

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, new_embeddings):
        self.embeddings = new_embeddings

    @can_return_tuple  # return_dict=False (the call's or the config's): a tuple, as transformers' models give
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        state: torch.FloatTensor | None = None,
        **kwargs,
    ) -> CharGRUOutput:
        embeds = self.dropout(self.embeddings(input_ids))
        if attention_mask is not None:
            # generate() hands over the mask of the whole text while feeding only the newest characters.
            attention_mask = attention_mask[:, -input_ids.shape[1] :]
        if attention_mask is None or bool(attention_mask.all()):
            hidden, state = self.gru(embeds, state)
        else:
            hidden, state = self._run_padded(embeds, attention_mask.bool(), state)
        return CharGRUOutput(last_hidden_state=self.dropout(hidden), state=state)

    def _run_padded(self, embeds, mask, state):
        # A GRU must not step over padding. Each row's real characters (contiguous, padded on the left or the right)
        # are gathered to the front, so that the padding comes after them, where it cannot reach them; each layer and
        # direction then reads the whole width unpacked (a packed GRU is 5-15x slower on a CPU, measured), the
        # backward direction over each row reversed, and the outputs are put back in place.
        batch_size, width = mask.shape
        lengths = mask.sum(dim=1)
        if bool((lengths == 0).any()):
            raise ValueError("attention_mask has a row with no real characters")
        starts = mask.int().argmax(dim=1)
        steps = torch.arange(width, device=mask.device)
        is_real = steps[None, :] < lengths[:, None]
        positions = torch.where(is_real, starts[:, None] + steps[None, :], torch.zeros_like(steps)[None, :])
        if not bool(mask.gather(1, positions)[is_real].all()):
            raise ValueError(
                "attention_mask must mark one contiguous run of characters per row (left or right padding)"
            )
        hidden = embeds.gather(1, positions[..., None].expand(-1, -1, embeds.shape[-1]))
        hidden, final_states = self.run_front_gathered(hidden, lengths, state)
        rows = torch.arange(batch_size, device=mask.device)[:, None].expand(-1, width)
        restored = hidden.new_zeros(hidden.shape)
        restored[rows[is_real], positions[is_real]] = hidden[is_real]
        return restored, final_states

    def run_front_gathered(self, hidden: torch.Tensor, lengths: torch.Tensor, state: torch.Tensor | None = None):
        """
        Every layer and direction over rows whose `lengths` real characters come first (padding after them, where it
        cannot reach them), unpacked; the backward direction reads each row's real characters reversed. Returns the
        last layer's outputs (in reading order) and the final states (forward after the last character, backward
        after the first), as `nn.GRU` stacks them. The padded forward path and the ONNX classifier graph both use it.
        """
        batch_size, width = hidden.shape[:2]
        steps = torch.arange(width, device=hidden.device)[None, :]
        # Where the backward direction reads: each row's real characters last to first, then padding.
        reversed_steps = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
        last = (lengths - 1)[:, None, None]
        directions = 2 if self.gru.bidirectional else 1
        weights, final_states = self.gru._flat_weights, []
        for layer in range(self.gru.num_layers):
            if layer and self.training and self.gru.dropout:
                hidden = nn.functional.dropout(hidden, self.gru.dropout)
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                inputs = hidden if direction == 0 else _reverse_rows(hidden, reversed_steps)
                initial = (
                    state[index : index + 1]
                    if state is not None
                    else inputs.new_zeros(1, batch_size, self.gru.hidden_size)
                )
                output, _ = torch.gru(
                    inputs, initial, weights[4 * index : 4 * index + 4], True, 1, 0.0, self.training, False, True
                )
                final_states.append(output.gather(1, last.expand(-1, 1, output.shape[-1]))[:, 0])
                outputs.append(output if direction == 0 else _reverse_rows(output, reversed_steps))
            hidden = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
        return hidden, torch.stack(final_states)


def _reverse_rows(tensor: torch.Tensor, reversed_steps: torch.Tensor) -> torch.Tensor:
    """Each row's real (front) part in reverse order, its padding left where it is (an involution)."""
    return tensor.gather(1, reversed_steps[..., None].expand(-1, -1, tensor.shape[-1]))


# The n-gram hash: h(c_1..c_n) = (...((c_1 + 1) * P + c_2 + 1) * P + ...) mod M over the ids (the boundary mark is
# vocab_size + 1), then mod the bucket count. M < 2**31 and P < 2**21 keep every product inside int64, so that
# PyTorch and the exported ONNX graph (Mul, Add, Mod on int64) compute the same buckets.
NGRAM_HASH_PRIME = 1_000_003
NGRAM_HASH_MODULUS = 2_147_483_647


def gather_to_front(input_ids: torch.LongTensor, attention_mask: torch.Tensor | None):
    """
    Each row's real characters (one contiguous run, padded on either side) moved to the front, and the rows' lengths:
    what follows a row's length repeats its last id and is never read as text. Traceable (the ONNX graph uses it).
    """
    width = input_ids.shape[1]
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask[:, -width:].to(torch.int64)
    starts = torch.argmax(mask, dim=1, keepdim=True)
    steps = torch.arange(width, device=input_ids.device)[None, :]
    return torch.gather(input_ids, 1, torch.clamp(starts + steps, max=width - 1)), mask.sum(dim=1)


def rolling_hashes(symbols: torch.LongTensor, ngram_range):
    """`(n, hashes)` for each n-gram length in `ngram_range`: entry `[b, e]` hashes the n-gram of `symbols` (ids + 1)
    that ends at position `e` (what lies before position 0 counts as 0)."""
    smallest, largest = ngram_range
    hashes = symbols
    for n in range(1, largest + 1):
        if n > 1:  # the (n-1)-gram ending one position earlier, extended by this position's symbol
            earlier = torch.cat([torch.zeros_like(hashes[:, :1]), hashes[:, :-1]], dim=1)
            hashes = torch.remainder(earlier * NGRAM_HASH_PRIME + symbols, NGRAM_HASH_MODULUS)
        if n >= smallest:
            yield n, hashes


def ngram_buckets(input_ids: torch.LongTensor, attention_mask: torch.Tensor | None, config: CharGRUConfig):
    """
    The hashed character n-grams of each row's real characters: `(buckets, valid)`, both `(batch, width + 2,
    n-gram lengths)`. Row `b`'s text is read as `<text>` (a boundary mark each side); entry `[b, e, k]` is the n-gram
    of length `ngram_range[0] + k` that ends at position `e` of it, `valid` where it lies inside `<text>` (a lone mark
    is not a 1-gram). Each row's characters are gathered to the front first, so padding on either side gives what
    the text gives alone.
    """
    batch_size, width = input_ids.shape
    gathered, lengths = gather_to_front(input_ids, attention_mask)
    lengths = lengths[:, None]
    boundary = torch.full_like(input_ids[:, :1], config.vocab_size + 1)
    marked = torch.cat([boundary, gathered, boundary], dim=1)  # position e: 0 = "<", 1..L = the text, L + 1 = ">"
    ends = torch.arange(width + 2, device=input_ids.device)[None, :]
    marked = torch.where(ends == lengths + 1, boundary, marked)
    symbols = marked + 1
    buckets, valid = [], []
    for n, hashes in rolling_hashes(symbols, config.ngram_range):
        inside = (ends >= n - 1) & (ends <= lengths + 1)
        if n == 1:
            inside = inside & (ends >= 1) & (ends <= lengths)
        buckets.append(torch.remainder(hashes, config.ngram_buckets))
        valid.append(inside.expand(batch_size, -1))
    return torch.stack(buckets, dim=-1), torch.stack(valid, dim=-1)


def window_ngram_buckets(input_ids: torch.LongTensor, attention_mask: torch.Tensor | None, config: CharGRUConfig):
    """
    The hashed character n-grams around each position: `(batch, width, features)` buckets, one feature a place and
    length, every n-gram of `ngram_range`'s lengths that lies within `ngram_window` characters each side of the
    position (a tagger's linear part reads them). Outside a row's real characters are marks, one before it and one
    after it, so that padding on either side gives what the text gives alone; the hash is `ngram_buckets`' over the
    ids, then mixed with the feature's place and length.
    """
    batch_size, width = input_ids.shape
    window = config.ngram_window
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask[:, -width:].to(torch.int64)
    steps = torch.arange(width, device=input_ids.device)[None, :]
    starts = torch.argmax(mask, dim=1, keepdim=True)
    before, after = config.vocab_size + 1, config.vocab_size + 2
    marks = torch.where(steps < starts, before, after)
    symbols = torch.where(mask.bool(), input_ids, marks)
    symbols = torch.cat([torch.full_like(symbols[:, :1], before).expand(-1, window), symbols], dim=1)
    symbols = torch.cat([symbols, torch.full_like(symbols[:, :1], after).expand(-1, window)], dim=1) + 1
    buckets, feature = [], 0
    for n, hashes in rolling_hashes(symbols, config.ngram_range):
        for offset in range(-window, window - n + 2):  # the n-gram from position + offset, inside the window
            feature += 1
            end = window + offset + n - 1  # where it ends, for position 0 (the marks shift everything by `window`)
            mixed = torch.remainder(hashes[:, end : end + width] * NGRAM_HASH_PRIME + feature, NGRAM_HASH_MODULUS)
            buckets.append(torch.remainder(mixed, config.ngram_buckets))
    return torch.stack(buckets, dim=-1)


class CharWindowNgramLinear(nn.Module):
    """
    A tagger's linear part: each position's label scores are the sum of one weight row a hashed n-gram around it
    (`window_ngram_buckets`) and a bias, as a linear SVM over those n-grams scores it. Computed from `input_ids`.
    """

    def __init__(self, config: CharGRUConfig):
        super().__init__()
        self.config = config
        self.weights = NgramLabelWeights(config.ngram_buckets, config.num_labels)
        self.bias = nn.Parameter(torch.zeros(config.num_labels))

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        rows = self.weights(window_ngram_buckets(input_ids, attention_mask, self.config))
        return rows.sum(dim=2) + self.bias.to(rows.dtype)


class CharNgramBag(nn.Module):
    """The mean embedding of a text's hashed character n-grams (fastText's bag, computed from `input_ids`)."""

    def __init__(self, config: CharGRUConfig):
        super().__init__()
        self.config = config
        self.embeddings = NgramEmbedding(config.ngram_buckets, config.ngram_embedding_size)

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        buckets, valid = ngram_buckets(input_ids, attention_mask, self.config)
        weights = valid.to(self.embeddings.weight.dtype)[..., None]
        total = (self.embeddings(buckets) * weights).sum(dim=(1, 2))
        return total / weights.sum(dim=(1, 2)).clamp(min=1)


class CharNgramLinear(nn.Module):
    """
    A linear classifier over a text's hashed character n-grams, read as a char n-gram SVM reads them: each occurrence
    weighted by its bucket's inverse document frequency (`idf`, from the training texts), the text's weights scaled to
    length 1, and one row of label scores a bucket. Computed from `input_ids`, as the bag is.
    """

    def __init__(self, config: CharGRUConfig):
        super().__init__()
        self.config = config
        self.weights = NgramLabelWeights(config.ngram_buckets, config.num_labels)
        self.bias = nn.Parameter(torch.zeros(config.num_labels))
        self.register_buffer("idf", torch.ones(config.ngram_buckets))

    def occurrence_weights(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None):
        """`(buckets, weights)`, both `(batch, width + 2, n-gram lengths)`: each occurrence's bucket and weight."""
        buckets, valid = ngram_buckets(input_ids, attention_mask, self.config)
        weights = self.idf[buckets] * valid.to(self.idf.dtype)
        # Each occurrence counted on its own, as if distinct: measured as good as the SVM's per-n-gram counts
        # (docs/training.md), and no sorting, so the ONNX graph is a gather and a sum.
        length = weights.square().sum(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-12)
        return buckets, weights / length

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        buckets, weights = self.occurrence_weights(input_ids, attention_mask)
        rows = self.weights(buckets)
        return (rows * weights.to(rows.dtype)[..., None]).sum(dim=(1, 2)) + self.bias.to(rows.dtype)


class CharGRUForSequenceClassification(CharGRUPreTrainedModel):
    """
    GRU over the text (one way or both); its final state, or its outputs pooled over the real characters
    (`config.classifier_readout`), go through a linear head (or a zero-shot head over symbol groups).
    """

    def __init__(self, config: CharGRUConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.char_gru = CharGRUModel(config)
        head_size = config.vocab_size if config.symbol_groups else config.num_labels
        readout_size = self.char_gru.output_size * (2 if config.classifier_readout == "pooled" else 1)
        if config.symbol_groups and (readout_size != config.hidden_size or config.ngram_range):
            raise ValueError(
                "a symbol-group head reads an LM's state: it needs classifier_readout 'last', one way, no n-grams"
            )
        if config.ngram_window is not None:
            raise ValueError(
                "ngram_window places n-grams around each character, a tagger's: a classifier reads the "
                "whole text's (drop ngram_window)"
            )
        self.ngram_bag = CharNgramBag(config) if config.ngram_range and config.ngram_embedding_size else None
        if self.ngram_bag is not None:
            readout_size += config.ngram_embedding_size
        self.ngram_linear = CharNgramLinear(config) if config.ngram_linear else None
        self.classifier = nn.Linear(readout_size, head_size)
        self.post_init()

    @classmethod
    def from_lm(cls, lm: "CharGRUForCausalLM", symbol_groups: dict[str, str]) -> "CharGRUForSequenceClassification":
        """
        A zero-shot classifier: the LM's backbone and head; label `i` scores the probability mass of the `i`-th group of
        next symbols (`{"consonant": "bcd...", "vowel": "aeiou"}`: is the next letter a vowel?).
        """
        unknown = sorted(set("".join(symbol_groups.values())) - set(lm.vocabulary.to_id))
        if unknown:
            raise ValueError(
                f"symbol groups name {''.join(unknown)!r}, not in this LM's {lm.vocabulary.kind} vocabulary"
            )
        config = lm.config.__class__.from_dict({**lm.config.to_dict(), "symbol_groups": dict(symbol_groups)})
        classifier = cls(config)
        classifier.char_gru.load_state_dict(lm.char_gru.state_dict())
        classifier.classifier.load_state_dict(lm.lm_head.state_dict())
        return classifier.eval()

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        scores = self.classifier(hidden)
        if not self.config.symbol_groups:
            return scores
        # The log probability mass of each group under the next-symbol distribution (symbols in no group left out).
        log_probs = torch.log_softmax(scores.float(), dim=-1)
        groups = [self.vocabulary.encode(symbols).tolist() for symbols in self.config.symbol_groups.values()]
        return torch.stack([torch.logsumexp(log_probs[..., ids], dim=-1) for ids in groups], dim=-1)

    def _logits(self, outputs: CharGRUOutput, attention_mask, input_ids: torch.LongTensor) -> torch.Tensor:
        """The head's scores, and with `ngram_linear` the linear n-gram scores added, each at its config scale."""
        return self.mix(self._head(self._features(outputs, attention_mask, input_ids)), input_ids, attention_mask)

    def _features(self, outputs: CharGRUOutput, attention_mask, input_ids: torch.LongTensor) -> torch.Tensor:
        """What the head reads per row: the GRU's readout, and beside it the n-gram bag when the config has one."""
        readout = self._readout(outputs, attention_mask)
        if self.ngram_bag is None:
            return readout
        return torch.cat([readout, self.char_gru.dropout(self.ngram_bag(input_ids, attention_mask))], dim=-1)

    def _readout(self, outputs: CharGRUOutput, attention_mask: torch.LongTensor | None) -> torch.Tensor:
        """The GRU's part: the last layer's final state(s), or its outputs' mean and max over the real characters."""
        if self.config.classifier_readout == "pooled":
            hidden = outputs.last_hidden_state  # zeros at padding
            if attention_mask is None:
                real = hidden.new_ones(hidden.shape[:2] + (1,), dtype=torch.bool)
            else:
                real = attention_mask[:, -hidden.shape[1] :].bool()[..., None]
            mean = hidden.sum(dim=1) / real.sum(dim=1).clamp(min=1).to(hidden.dtype)
            largest = hidden.masked_fill(~real, torch.finfo(hidden.dtype).min).amax(dim=1)
            return torch.cat([mean, largest], dim=-1)
        state = outputs.state
        # Last layer: forward state after the last real character (and the backward one, after the first).
        final = torch.cat([state[-2], state[-1]], dim=-1) if self.config.bidirectional else state[-1]
        return self.char_gru.dropout(final)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)` or `(batch_size, sequence_length)`, *optional*):
            One label per text, for the state after its last character; or one label per position (-100 where
            there is none), which trains the head on the state after every prefix of the text. A multi-label
            classifier (`config.problem_type == "multi_label_classification"`): a `(batch_size, num_labels)` row of
            0 / 1 a text, each label's sigmoid trained by binary cross-entropy.
        """
        outputs = self.char_gru(input_ids, attention_mask=attention_mask, return_dict=True)
        logits = self._logits(outputs, attention_mask, input_ids)
        loss = None
        if labels is not None and self.multi_label:
            # Any number of labels a text (a 0/1 row of num_labels): each label's sigmoid, binary cross-entropy.
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        elif labels is not None and labels.dim() == 2:
            check_position_labels(self.config)
            # One label per position: the head reads the state after every prefix of the text.
            prefix_logits = self._head(outputs.last_hidden_state)
            loss = nn.functional.cross_entropy(prefix_logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        elif labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Every label's probability (shape `(len(texts), num_labels)`, in label-id order) for strings of any length."""
        if not texts:
            return np.zeros((0, self.config.num_labels))
        input_ids, attention_mask = _pad_batch(texts, self.vocabulary, self.device)
        logits = self(input_ids, attention_mask=attention_mask).logits.float()
        if self.multi_label:  # each label on its own, as the text-classification pipeline scores it
            return torch.sigmoid(logits).cpu().numpy()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    @property
    def multi_label(self) -> bool:
        """Any number of labels a text (`config.problem_type`), each scored by its sigmoid."""
        return self.config.problem_type == MULTI_LABEL

    def thresholds(self) -> torch.Tensor:
        """A multi-label classifier's probability thresholds, a label each (`config.label_thresholds`; else 0.5)."""
        return torch.tensor(self.config.label_thresholds or [0.5] * self.config.num_labels)

    @torch.no_grad()
    def predict_batch(self, texts: list[str]) -> list:
        """
        Predicted label ids (`config.id2label` names them) for many texts at once: one a text, or for a multi-label
        classifier a list a text (the labels whose probability reaches their threshold, in id order).
        """
        if not texts:
            return []
        input_ids, attention_mask = _pad_batch(texts, self.vocabulary, self.device)
        return self.labels_of(self(input_ids, attention_mask=attention_mask).logits)

    def labels_of(self, logits) -> list:
        """
        What `logits` (texts x labels: this model's, or its ONNX graph's) predict: a label id a text, or for a
        multi-label model the ids whose probability reaches their threshold, a list a text.
        """
        logits = torch.as_tensor(logits).float().cpu()
        if self.multi_label:
            chosen = torch.sigmoid(logits) >= self.thresholds()
            return [torch.flatten(torch.nonzero(row)).tolist() for row in chosen]
        return logits.argmax(dim=-1).tolist()

    def predict(self, text: str) -> int:
        """The predicted label id of one text (the exercise's interface: 1 = vowel next, with its labels)."""
        return self.predict_batch([text])[0]


# The parameters of transformers' `GenerationMixin._sample` that `CharGRUForCausalLM._sample` overrides and calls.
SAMPLE_PARAMETERS = (
    "self",
    "input_ids",
    "logits_processor",
    "stopping_criteria",
    "generation_config",
    "synced_gpus",
    "streamer",
    "model_kwargs",
)


def check_sample_signature():
    """
    The lean decoding loop replaces a private method of transformers: refuse to run against a transformers whose
    `_sample` takes other parameters (a silent mismatch could drop a setting), naming the fix.
    """
    found = tuple(inspect.signature(GenerationMixin._sample).parameters)
    if found != SAMPLE_PARAMETERS:
        raise RuntimeError(
            f"transformers' GenerationMixin._sample now takes ({', '.join(found)}), not "
            f"({', '.join(SAMPLE_PARAMETERS)}) "
            "as hf_charnn's lean generate() loop expects; set `CharGRUForCausalLM.lean_generation = False` "
            "(transformers' "
            "own loop) or install the transformers version hf_charnn supports"
        )


class CharGRUForCausalLM(CharGRUPreTrainedModel, GenerationMixin):
    """
    GRU language model over its vocabulary (27 symbols for text8); carries its state through `generate()` like RWKV.
    """

    # generate() reads the prompt once and then takes one GRU-cell step per new character (see `_sample`); False runs
    # every step through transformers' generic loop and the full forward (kept to measure the difference).
    lean_generation = True

    def __init__(self, config: CharGRUConfig):
        if config.bidirectional:
            raise ValueError("an LM reads left to right: bidirectional is for classifiers (set it False)")
        super().__init__(config)
        self.char_gru = CharGRUModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() would otherwise hand this model a DynamicCache (it exempts only some model names).
        return False

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        cache: Cache | None = None,
        state: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> CharGRUCausalLMOutput:
        r"""
        cache (`CharGRUCache`, *optional*):
            The state after the text read so far (a previous output's `cache`): the input continues it. It is updated
            in place and returned when `use_cache` is on.
        state (`torch.FloatTensor` of shape `(num_hidden_layers, batch_size, hidden_size)`, *optional*):
            The same as one tensor (a previous output's `state`), instead of `cache`.
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Usually `input_ids` (padding set to -100): the loss shifts them by one, as for every `...ForCausalLM`.
        shift_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*, a keyword):
            Targets already aligned with the inputs (`shift_labels[:, t]` follows `input_ids[:, t]`), for
            training on consecutive windows of a stream where the last position's target lies in the next window.
            Taken from `kwargs`, as transformers' causal LMs take it: a `shift_labels` parameter would make Trainer
            expect it in every batch (it reads the label names off this signature) and report no `eval_loss`.
        """
        shift_labels = kwargs.pop("shift_labels", None)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if state is None and cache is not None:
            state = cache.state()
        one_step = state is not None and input_ids.shape[1] == 1 and labels is None and shift_labels is None
        if one_step and self.lean_generation and not self.training:
            # One new character of a text already read (generate()'s every step after the prompt): one GRU-cell step per
            # layer, without the sequence machinery; the same numbers as the full path.
            layer_states = list(state.unbind(0))
            logits = self._cell_step(input_ids[:, 0], layer_states, self._cell_weights())
            return self._output(logits[:, None], torch.stack(layer_states), cache, use_cache)
        outputs = self.char_gru(input_ids, attention_mask=attention_mask, state=state, return_dict=True)
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None or shift_labels is not None:
            loss = self.loss_function(
                logits.float(), labels, vocab_size=self.config.vocab_size, shift_labels=shift_labels
            )
        return self._output(logits, outputs.state, cache, use_cache, loss)

    @staticmethod
    def _output(logits, state, cache, use_cache: bool, loss=None) -> CharGRUCausalLMOutput:
        """The output, with the new state (when `use_cache`) as a `CharGRUCache` (the one passed in, updated) and as a
        tensor."""
        if not use_cache:
            return CharGRUCausalLMOutput(loss=loss, logits=logits)
        if isinstance(cache, CharGRUCache):
            cache.update_state(state)
        else:
            cache = CharGRUCache.from_state(state)
        return CharGRUCausalLMOutput(loss=loss, logits=logits, cache=cache, state=state)

    def _cell_weights(self) -> tuple:
        """
        What `_cell_step` reads: (embedding, per layer (weight_ih, weight_hh, bias_ih, bias_hh), head weight, head
        bias).
        """
        gru = self.char_gru.gru
        flat = gru._flat_weights
        layers = [tuple(flat[4 * layer : 4 * layer + 4]) for layer in range(gru.num_layers)]
        return self.char_gru.embeddings.weight, layers, self.lm_head.weight, self.lm_head.bias

    @staticmethod
    def _cell_step(input_ids: torch.LongTensor, layer_states: list, weights: tuple) -> torch.Tensor:
        """
        One character per row through every layer (eval mode: no dropout): `layer_states` (one tensor per layer) is
        updated in place; returns the next-symbol logits. Functional calls on weights fetched once: at one character a
        step, module calls and attribute lookups cost as much as the math.
        """
        embedding, layers, head_weight, head_bias = weights
        hidden = nn.functional.embedding(input_ids, embedding).to(layer_states[0].dtype)
        for index, layer in enumerate(layers):
            hidden = layer_states[index] = torch.gru_cell(hidden, layer_states[index], *layer)
        return nn.functional.linear(hidden, head_weight, head_bias)

    # -- generate() with a recurrent state ---------------------------------------------------------------
    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        # The state travels as `cache`, the name generate() reorders for beam search.
        model_kwargs["cache"] = outputs.get("cache")
        model_kwargs.pop("state", None)
        return super()._update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder, num_new_tokens)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, cache=None, use_cache=None, **kwargs):
        # As transformers' Mamba and RWKV: once the prompt has been read, the state holds the whole text, and each step
        # feeds only the newest character (its mask is all ones, so none is passed). A `state` tensor given to
        # generate() (code of earlier releases) starts the cache.
        state = kwargs.pop("state", None)
        if cache is None and state is not None:
            cache = CharGRUCache.from_state(state)
        if not self.lean_generation:
            return super().prepare_inputs_for_generation(
                input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache, **kwargs
            )
        if cache is not None and cache.has_state():
            return {"input_ids": input_ids[:, -1:], "cache": cache, "use_cache": True}
        return {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": use_cache}

    def _sample(
        self,
        input_ids,
        logits_processor,
        stopping_criteria,
        generation_config,
        synced_gpus=False,
        streamer=None,
        **model_kwargs,
    ):
        """
        Greedy decoding and sampling (generate()'s `_sample`) with one GRU-cell step per new character and no per-step
        output objects: the same logits processors, stopping criteria and streamer as transformers' loop, the same
        tokens.
        Anything this lean loop does not cover (scores or states returned, a state passed in, training mode, several
        synced GPUs, `lean_generation = False`) goes through transformers' own loop.
        """
        lean = (
            self.lean_generation
            and not self.training
            and not synced_gpus
            and not generation_config.return_dict_in_generate
            and model_kwargs.get("state") is None
            and model_kwargs.get("cache") is None
            and model_kwargs.get("inputs_embeds") is None
            and model_kwargs.get("use_cache", True)
        )
        if not lean:
            return super()._sample(
                input_ids,
                logits_processor,
                stopping_criteria,
                generation_config,
                synced_gpus=synced_gpus,
                streamer=streamer,
                **model_kwargs,
            )
        check_sample_signature()
        pad_token_id = generation_config._pad_token_tensor
        has_eos_stopping_criteria = any(hasattr(criteria, "eos_token_id") for criteria in stopping_criteria)
        # The length limit is checked on the host (it ends every row at once); other criteria run as transformers runs
        # them.
        max_length = stopping_criteria.max_length
        other_criteria = StoppingCriteriaList(
            [criteria for criteria in stopping_criteria if not isinstance(criteria, MaxLengthCriteria)]
        )
        outputs = self(input_ids, attention_mask=model_kwargs.get("attention_mask"), use_cache=True, return_dict=True)
        logits, layer_states, weights = (
            outputs.logits[:, -1].float(),
            list(outputs.state.unbind(0)),
            self._cell_weights(),
        )
        reads_ids = bool(logits_processor) or bool(other_criteria)  # else the text so far is only needed at the end
        unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
        # The new ids are written into one buffer (a growing torch.cat copies the whole text at every step).
        length = input_ids.shape[1]
        buffer = input_ids.new_empty((input_ids.shape[0], max_length if max_length is not None else length + 1024))
        buffer[:, :length] = input_ids
        while True:
            scores = logits_processor(input_ids, logits) if logits_processor else logits
            if generation_config.do_sample:
                next_ids = torch.multinomial(nn.functional.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            else:
                next_ids = torch.argmax(scores, dim=-1)
            if has_eos_stopping_criteria:  # finished rows get padding, as in transformers' loop
                next_ids = next_ids * unfinished + pad_token_id * (1 - unfinished)
            if length == buffer.shape[1]:
                buffer = torch.cat([buffer, buffer.new_empty((buffer.shape[0], 1024))], dim=-1)
            buffer[:, length] = next_ids
            length += 1
            if reads_ids:
                input_ids = buffer[:, :length]
            if streamer is not None:
                streamer.put(next_ids.cpu())
            if max_length is not None and length >= max_length:
                break
            if other_criteria:
                unfinished = unfinished & ~other_criteria(input_ids, scores)
                if unfinished.max() == 0:
                    break
            logits = self._cell_step(next_ids, layer_states, weights).float()
        if streamer is not None:
            streamer.end()
        return buffer[:, :length].clone()  # not a view of the larger buffer

    def symbol_group_classifier(self, symbol_groups: dict[str, str]) -> CharGRUForSequenceClassification:
        """
        A zero-shot classifier from this LM over groups of next symbols (see
        `CharGRUForSequenceClassification.from_lm`).
        """
        return CharGRUForSequenceClassification.from_lm(self, symbol_groups)

    # -- scoring strings -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _log_probs_after_each(self, texts: list) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Log probabilities of the next symbol at every point of each text (a string or its ids), from its empty
        prefix on: row b, position i is the distribution of symbol i+1 given the first i. One forward pass.
        """
        input_ids, attention_mask = _pad_batch(texts, self.vocabulary, self.device)
        # An empty text is scored from the initial state alone; give its row one (padding) step so that no row is
        # empty (the padded loop needs a first step). That step's output lies past the row's end and is never read.
        attention_mask[:, 0] = 1
        outputs = self.char_gru(input_ids, attention_mask=attention_mask, return_dict=True)
        # The distribution before any character comes from the initial (zero) state.
        initial = self.lm_head(outputs.last_hidden_state.new_zeros(len(texts), 1, self.config.hidden_size))
        logits = torch.cat([initial, self.lm_head(outputs.last_hidden_state)], dim=1)
        return torch.log_softmax(logits.float(), dim=-1), attention_mask

    def get_next_char_log_probs(self, context: str) -> np.ndarray:
        """Log probabilities (shape `(vocab_size,)`, in id order: 27 for text8) of the symbol after `context`."""
        context_ids = self.vocabulary.encode(context)
        log_probs, _ = self._log_probs_after_each([context_ids])
        return log_probs[0, len(context_ids)].cpu().numpy()

    def get_log_prob_sequence(self, next_chars: str, context: str) -> float:
        """log P(next_chars | context), from ONE pass over `context + next_chars[:-1]`."""
        return self.score_texts([next_chars], context=context)[0]

    @torch.no_grad()
    def score_long_text(self, text, num_streams: int = 1, warmup: int = 256, block_size: int = 512) -> float:
        """
        log P(text | start symbol) of a long text (a string or an array of ids of this model's vocabulary), in bounded
        memory (the start symbol is a space where the vocabulary has one).

        With `num_streams=1` this is the exact score, read in blocks of `block_size` characters with the GRU state
        carried between them. With N streams the text is cut into N contiguous pieces scored side by side in one
        batch (N times fewer sequential steps); each piece's state is first warmed up on the `warmup` characters
        before it, which are not scored twice. The first piece starts from the context " ", as the exact score does.
        """
        ids = self.vocabulary.encode(text) if isinstance(text, str) else np.asarray(text, dtype=np.uint8)
        if len(ids) == 0:
            return 0.0
        start = np.array([self.vocabulary.start_id], dtype=np.int64)
        sequence = np.concatenate([start, ids.astype(np.int64)])  # input i predicts i+1
        streams = max(1, min(int(num_streams), len(ids)))
        bounds = np.linspace(0, len(ids), streams + 1).astype(np.int64)
        starts, ends = bounds[:-1], bounds[1:]
        state = torch.zeros(
            self.config.num_hidden_layers, streams, self.config.hidden_size, device=self.device, dtype=self.dtype
        )
        warm = np.minimum(max(0, int(warmup)), starts)
        warmed = np.flatnonzero(warm > 0)
        if warmed.size:
            width = int(warm.max())
            steps = np.arange(width)[None, :]
            positions = (starts[warmed] - width)[:, None] + steps  # left padding: each row ends right before its piece
            real = steps >= (width - warm[warmed])[:, None]
            input_ids = torch.from_numpy(np.where(real, sequence[np.maximum(positions, 0)], 0)).to(self.device)
            mask = torch.from_numpy(real.astype(np.int64)).to(self.device)
            state[:, torch.from_numpy(warmed).to(self.device)] = self.char_gru(
                input_ids, attention_mask=mask, return_dict=True
            ).state
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for offset in range(0, int((ends - starts).max()), block_size):
            positions = starts[:, None] + offset + np.arange(block_size)[None, :]
            valid = positions < ends[:, None]
            positions = np.where(valid, positions, 0)
            # Rows that end inside this block step over a few padding ids; their state is not used afterwards.
            outputs = self.char_gru(
                torch.from_numpy(sequence[positions]).to(self.device), state=state, return_dict=True
            )
            state = outputs.state
            log_probs = torch.log_softmax(self.lm_head(outputs.last_hidden_state).float(), dim=-1)
            targets = torch.from_numpy(sequence[positions + 1]).to(self.device)
            per_char = log_probs.gather(2, targets[..., None])[..., 0]
            total += (per_char * torch.from_numpy(valid).to(self.device)).sum().double()
        return float(total)

    def score_texts(self, texts: list[str], context: str = " ") -> list[float]:
        """log P(text | context) for each text, batched: the texts are padded and scored in one pass."""
        if not texts:
            return []
        nonempty = [text for text in texts if text]
        scores = iter(self._score_nonempty(nonempty, context) if nonempty else [])
        return [next(scores) if text else 0.0 for text in texts]

    def _score_nonempty(self, texts: list[str], context: str) -> list[float]:
        # In ids: a symbol is a character, or a byte for a `bytes` model (a character may span several).
        context_ids = self.vocabulary.encode(context)
        text_ids = [self.vocabulary.encode(text) for text in texts]
        log_probs, attention_mask = self._log_probs_after_each(
            [np.concatenate([context_ids, ids[:-1]]) for ids in text_ids]
        )
        targets = _pad_batch(text_ids, self.vocabulary, self.device)[0]
        # Row b predicts symbol j of its text at position len(context_ids) + j.
        scored = log_probs[:, len(context_ids) : len(context_ids) + targets.shape[1]]
        per_char = scored.gather(2, targets.clamp(max=self.config.vocab_size - 1)[..., None])[..., 0]
        lengths = torch.tensor([len(ids) for ids in text_ids], device=self.device)
        valid = torch.arange(targets.shape[1], device=self.device)[None, :] < lengths[:, None]
        return (per_char * valid).sum(dim=1).double().tolist()


class CharGRUForTokenClassification(CharGRUPreTrainedModel):
    """
    One label per symbol: the backbone's output at each position (both directions' side by side with
    `bidirectional`: a character tagger reads the text after it too) through dropout and a linear head. Padding on
    either side gives each text what it gives alone; the logits at padded positions are the head's bias and are never
    read (labels there are -100).
    """

    def __init__(self, config: CharGRUConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        if config.ngram_range and (not config.ngram_linear or config.ngram_window is None):
            raise ValueError(
                "a tagger reads n-grams only in its linear part, around each character: with ngram_range, set "
                "ngram_linear and ngram_window (say 4)"
            )
        self.char_gru = CharGRUModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.char_gru.output_size, config.num_labels)
        self.ngram_linear = CharWindowNgramLinear(config) if config.ngram_linear else None
        self.post_init()

    def get_input_embeddings(self):
        return self.char_gru.embeddings

    def set_input_embeddings(self, new_embeddings):
        self.char_gru.embeddings = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            The label id of every position; -100 where there is none (padding).
        """
        outputs = self.char_gru(input_ids, attention_mask=attention_mask, return_dict=True)
        logits = self.mix(self.classifier(self.dropout(outputs.last_hidden_state)), input_ids, attention_mask)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def predict_tags(self, texts: list[str]) -> list[list[int]]:
        """The predicted label id of every symbol of each text (`config.id2label` names them)."""
        nonempty = [text for text in texts if len(text)]
        if not nonempty:
            return [[] for _ in texts]
        input_ids, attention_mask = _pad_batch(nonempty, self.vocabulary, self.device)
        predicted = self(input_ids, attention_mask=attention_mask).logits.argmax(dim=-1).tolist()
        lengths = attention_mask.sum(dim=1).tolist()
        rows = iter(row[:length] for row, length in zip(predicted, lengths))
        return [next(rows) if len(text) else [] for text in texts]
