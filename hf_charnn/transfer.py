"""Using the character LM as a vowel/consonant classifier, zero-shot."""

import torch

from .tokenization_char_gru import CHARACTERS, VOWELS

VOWEL_IDS = [CHARACTERS.index(vowel) for vowel in VOWELS]
CONSONANT_IDS = [index for index, char in enumerate(CHARACTERS) if char not in VOWELS and char != " "]


class LMVowelClassifier:
    """
    Zero-shot classifier from a `CharGRUForCausalLM`: predicts "vowel" (1) when the LM's next-character
    probability mass on a e i o u exceeds its mass on the 21 consonants (space, which no example is followed
    by, is left out).
    """

    def __init__(self, lm):
        self.lm = lm.eval()

    @torch.no_grad()
    def vowel_probability(self, contexts: list[str]) -> list[float]:
        log_probs, attention_mask = self.lm._log_probs_after_each(contexts)
        lengths = torch.tensor([len(context) for context in contexts], device=log_probs.device)
        last = log_probs[torch.arange(len(contexts), device=log_probs.device), lengths].exp()
        vowel, consonant = last[:, VOWEL_IDS].sum(-1), last[:, CONSONANT_IDS].sum(-1)
        return (vowel / (vowel + consonant)).tolist()

    def predict_batch(self, contexts: list[str]) -> list[int]:
        return [int(p > 0.5) for p in self.vowel_probability(contexts)]

    def predict(self, context: str) -> int:
        return self.predict_batch([context])[0]
