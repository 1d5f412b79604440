"""Message text with a realistic length spread: short user turns, long assistant replies.

Lengths are log-normal (user median 80 characters, assistant median 900), cut to the
schema's 32,000-character limit. Text is sliced from a fixed word corpus, so it is
cheap to make and contains no characters that COPY's text format must escape.
"""

from __future__ import annotations

import math
import random

_WORD_TEXT = (
    "the a of to and in is it you that for on with as are this be can your have not "
    "or will from by at an if but what all so do use when which they more one how "
    "about query index table conversation message model answer question example code "
    "function return value error because should would could please thanks python "
    "postgres data time first then also here there just like need want make sure "
)
_WORDS = _WORD_TEXT.split()

USER_MEDIAN_CHARS = 80
ASSISTANT_MEDIAN_CHARS = 900
MAX_CHARS = 32_000


def _build_corpus(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 24)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(".?!,;:") + " "
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)


class TextSource:
    """Deterministic text of a chosen length distribution."""

    def __init__(self, seed: int = 5, corpus_chars: int = 1 << 20) -> None:
        self._rng = random.Random(seed)
        self._corpus = _build_corpus(self._rng, corpus_chars + MAX_CHARS)
        self._corpus_chars = corpus_chars

    def length(self, role: str) -> int:
        if role == "user":
            n = self._rng.lognormvariate(math.log(USER_MEDIAN_CHARS), 0.9)
        else:
            n = self._rng.lognormvariate(math.log(ASSISTANT_MEDIAN_CHARS), 0.8)
        return max(2, min(MAX_CHARS, int(n)))

    def text(self, role: str) -> str:
        n = self.length(role)
        start = self._rng.randrange(self._corpus_chars)
        # Start on a word so the text never begins with a space.
        while self._corpus[start] == " ":
            start += 1
        return self._corpus[start : start + n].rstrip() or "ok"
