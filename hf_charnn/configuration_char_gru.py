"""Configuration of the character-level GRU models (one config serves the classifier and the LM)."""

from transformers import PretrainedConfig


class CharGRUConfig(PretrainedConfig):
    r"""
    Configuration for [`CharGRUForSequenceClassification`] and [`CharGRUForCausalLM`].

    Args:
        vocab_size (`int`, defaults to 27):
            Number of symbols the models read and the LM predicts (27 for text8: `a`-`z` and space). The embedding
            has one more row, for the padding id (`vocab_size`), which the LM never predicts.
        vocab_kind (`str`, defaults to `"text8"`):
            The vocabulary (see `tokenization_char_gru.Vocabulary`): `"text8"`, `"chars"` (the characters in
            `characters`, plus `<unk>` when `unk_token_id` is set) or `"bytes"` (the 256 UTF-8 byte values).
        characters (`str`, *optional*):
            A `chars` vocabulary's characters, in id order: the model's own strings are encoded with it.
        unk_token_id (`int`, *optional*):
            A `chars` vocabulary's `<unk>` id (its last), where characters outside it go.
        embedding_size (`int`, defaults to 64):
            Size of the character embeddings. The embedding table has `vocab_size + 1` rows: the last is the
            tokenizer's padding id (27), which the models skip through `attention_mask`.
        hidden_size (`int`, defaults to 512):
            Size of the GRU state.
        num_hidden_layers (`int`, defaults to 1):
            Number of stacked GRU layers.
        dropout (`float`, defaults to 0.0):
            Dropout on the embeddings, between GRU layers and on the GRU outputs (training only).
        initializer_range (`float`, defaults to 1.0):
            Standard deviation of the embedding initialisation (1.0, as `nn.Embedding` does).
        vowel_mass_head (`bool`, defaults to `False`):
            Classifier only: the head is an LM head over the 27 characters, and the two logits are the log
            probability mass on the consonants and on the vowels (a zero-shot classifier made from an LM).
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
        vowel_mass_head: bool = False,
        pad_token_id: int | None = None,
        **kwargs,
    ):
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = {0: "consonant", 1: "vowel"}
            kwargs.setdefault("label2id", {"consonant": 0, "vowel": 1})
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
        self.vowel_mass_head = vowel_mass_head
        # Declared because v5's base config no longer does. It stays None: padding is read from
        # `attention_mask`, and the padding id (27) lies outside the 27 characters the LM predicts.
        self.pad_token_id = pad_token_id
        # v5's base config declares no tying attribute: the LM head is its own matrix (27 x hidden).
        self.tie_word_embeddings = False
        super().__init__(**kwargs)
