"""Test doubles that are not servers: the deterministic small embedder (fast unit tests, no model).

The fake servers have their own modules (fake_bot_api, fake_openai, fake_site); the fake ``qabot``
command line is fake_model_cli.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from qabot.models.embedding import HASH_MODEL


class HashEmbedder:
    """Deterministic hashed features, no model: a fake for fast unit tests only.

    Construct it directly (``HashEmbedder()``); :func:`qabot.models.embedding.load_embedder`
    refuses its name, so a setting such as ``QABOT_MODEL=hash-test`` cannot put it behind a real index.

    Lowercase word unigrams and the character 3- and 4-grams of each word are hashed
    (blake2b, stable across runs, unlike ``hash()``) into signed buckets, then the vector
    is L2-normalised: texts that share words or word pieces score higher.
    """

    name = HASH_MODEL
    max_seq_length = 512

    def __init__(self, *, dimension: int = 256) -> None:
        self.dimension = dimension
        self._words: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a word's (buckets, signed weights)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """One hashed vector per text; float32 (n, dim), L2-normalised."""
        return self._embed(texts)

    def embed_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Same as :meth:`embed_queries` (no prompts here); the batch options are ignored."""
        return self._embed(texts)

    def count_tokens(self, text: str) -> int:
        """Whitespace words plus two, standing in for <s> and </s>."""
        return len(text.split()) + 2

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out

    def _vector(self, text: str) -> np.ndarray:
        # Weights are 1 and 0.5, so every partial sum is exact in float64: summing word by word
        # (each word's features hashed once, then cached) gives the same vector as feature by feature.
        features = [self._features(word) for word in re.findall(r"\w+", text.lower())]
        if features:
            vec = np.bincount(np.concatenate([b for b, _ in features]), np.concatenate([w for _, w in features]),
                              minlength=self.dimension)
        else:
            vec = self._fixed()  # a fixed unit vector, so every row stays normalised
        norm = np.linalg.norm(vec)
        if norm == 0.0:  # every feature cancelled out: fall back to the fixed vector
            vec = self._fixed()
            norm = np.linalg.norm(vec)
        return (vec / norm).astype(np.float32)

    def _features(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """The word itself and the character 3- and 4-grams of the word with a space each side, as buckets and signed weights."""
        found = self._words.get(word)
        if found is None:
            padded = f" {word} "  # so that prefixes and suffixes are n-grams of their own
            grams = [f"c{n}:" + padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]
            names = [("w:" + word, 1.0)] + [(gram, 0.5) for gram in grams]
            hashed = [self._bucket(name, weight) for name, weight in names]
            found = (np.array([b for b, _ in hashed], dtype=np.intp), np.array([w for _, w in hashed], dtype=np.float64))
            if len(self._words) >= 1 << 18:  # bounded: an archive's vocabulary, not every word ever seen
                self._words.clear()
            self._words[word] = found
        return found

    def _fixed(self) -> np.ndarray:
        bucket, weight = self._bucket("<empty>", 1.0)
        vec = np.zeros(self.dimension, dtype=np.float64)
        vec[bucket] = weight
        return vec

    def _bucket(self, feature: str, weight: float) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        # the sign bit keeps colliding features from only ever adding up
        return value % self.dimension, (weight if (value >> 63) & 1 else -weight)

    def __repr__(self) -> str:
        return f"HashEmbedder(dimension={self.dimension})"
