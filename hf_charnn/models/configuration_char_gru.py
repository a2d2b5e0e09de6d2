"""Configuration of the character-level GRU models (one config serves the classifier and the LM)."""

from transformers import PretrainedConfig


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
        # Declared because v5's base config no longer does. It stays None: padding is read from
        # `attention_mask`, and the padding id (`vocab_size`) lies outside the symbols the LM predicts.
        self.pad_token_id = pad_token_id
        # v5's base config declares no tying attribute: the LM head is its own matrix (vocab_size x hidden).
        self.tie_word_embeddings = False
        super().__init__(**kwargs)
