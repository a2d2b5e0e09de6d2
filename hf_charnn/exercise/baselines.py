"""The exercise's two baselines, with the same interfaces as the GRU models."""

import math
from collections import Counter

import numpy as np

from ..models.tokenization_char_gru import CHARACTERS


class FrequencyClassifier:
    """Predicts the label seen most often after the context's last character in the training examples."""

    def __init__(self, consonant_counts: Counter, vowel_counts: Counter):
        self.consonant_counts = consonant_counts
        self.vowel_counts = vowel_counts

    @classmethod
    def fit(cls, consonant_examples: list[str], vowel_examples: list[str]) -> "FrequencyClassifier":
        return cls(Counter(text[-1] for text in consonant_examples), Counter(text[-1] for text in vowel_examples))

    def predict(self, context: str) -> int:
        last = context[-1]
        # Ties (and unseen characters) go to "vowel", as in the exercise's reference code.
        return 0 if self.consonant_counts[last] > self.vowel_counts[last] else 1


class UniformLanguageModel:
    """Every character equally likely: perplexity exactly 27."""

    def __init__(self, vocab_size: int = len(CHARACTERS)):
        self.vocab_size = vocab_size

    def get_next_char_log_probs(self, context: str) -> np.ndarray:
        return np.full(self.vocab_size, -math.log(self.vocab_size))

    def get_log_prob_sequence(self, next_chars: str, context: str) -> float:
        return -math.log(self.vocab_size) * len(next_chars)
