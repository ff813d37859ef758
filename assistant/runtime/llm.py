"""LLM backends behind one interface: a LangChain chat model that streams tokens.

- ``llamacpp`` (embedded default): llama.cpp in-process through the prebuilt
  ``xllamacpp`` wheel, with a GGUF assembled from PyPI packages (gguf.py).
- ``ollama`` (production): ``langchain-ollama`` against ``OLLAMA_HOST``.

Callers only ever see ``BaseChatModel``; ``describe()`` says which one runs.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Any, Iterator

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from ..config import Settings
from ..errors import BackendUnavailable, ModelError
from . import gguf

# ---------------------------------------------------------------- embedded engine


class EmbeddedEngine:
    """One loaded GGUF in this process. Loading costs ~1 s and ~0.6–2 GB, so engines are shared."""

    _cache: dict[tuple, "EmbeddedEngine"] = {}
    _lock = threading.Lock()

    def __init__(self, info: gguf.ModelInfo, threads: int, n_ctx: int) -> None:
        import xllamacpp as xlc

        p = xlc.CommonParams()
        p.model.path = str(info.path)
        p.n_ctx = n_ctx
        p.n_parallel = 1          # one slot: its KV cache keeps the fixed prompt prefix between calls
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.offline = True          # llama.cpp must never reach for a hub
        p.ui = False
        p.warmup = True
        p.verbosity = -1          # llama.cpp logs every slot to stderr otherwise
        try:
            self.server = xlc.Server(p)
        except Exception as exc:  # the engine reports a corrupt GGUF as a generic error
            raise ModelError(f"llama.cpp kann {info.path.name} nicht laden: {exc}",
                             f"llama.cpp cannot load {info.path.name}: {exc}",
                             "Datei löschen und `pilot-assistant setup` ausführen") from None
        self.info = info
        self.threads = threads
        # xllamacpp can deadlock when a Server is destroyed right after start; one request avoids it.
        self.server.handle_chat_completions({"messages": [{"role": "user", "content": "ok"}], "max_tokens": 1})
        self._busy = threading.Lock()   # one generation at a time; the Gradio queue serialises users

    @classmethod
    def get(cls, settings: Settings) -> "EmbeddedEngine":
        info = gguf.resolve(settings.llm.model, settings.models_dir)
        key = (str(info.path), settings.llm.threads, settings.llm.n_ctx)
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = EmbeddedEngine(info, settings.llm.threads, settings.llm.n_ctx)
            return cls._cache[key]

    def complete(self, body: dict) -> dict:
        with self._busy:
            r = self.server.handle_chat_completions(body)
        if "error" in r:
            raise BackendUnavailable(f"llama.cpp meldet einen Fehler: {r['error']}",
                                     f"llama.cpp reported an error: {r['error']}", "Frage kürzen oder neu starten")
        return r

    def stream(self, body: dict) -> Iterator[str]:
        """Yield content deltas; generation runs in a thread (it releases the GIL)."""
        q: queue.Queue = queue.Queue()
        cancel = threading.Event()
        done = object()

        def on_chunk(chunk: dict) -> bool:
            q.put(chunk)
            return cancel.is_set()   # True tells llama.cpp to stop: the consumer went away

        def work() -> None:
            try:
                with self._busy:
                    self.server.handle_chat_completions({**body, "stream": True}, on_chunk)
            except Exception as exc:  # surfaced to the consumer below
                q.put(exc)
            finally:
                q.put(done)

        threading.Thread(target=work, daemon=True, name="llama-stream").start()
        try:
            while (item := q.get()) is not done:
                if isinstance(item, Exception):
                    raise BackendUnavailable(f"llama.cpp brach ab: {item}", f"llama.cpp failed: {item}",
                                             "Erneut versuchen; bei Wiederholung `pilot-assistant doctor`")
                if "error" in item:
                    raise BackendUnavailable(f"llama.cpp meldet einen Fehler: {item['error']}",
                                             f"llama.cpp reported an error: {item['error']}",
                                             "Frage kürzen oder neu starten")
                for choice in item.get("choices", []):
                    if delta := (choice.get("delta") or {}).get("content"):
                        yield delta
        finally:
            cancel.set()


class EmbeddedChat(BaseChatModel):
    """LangChain chat model over the in-process llama.cpp engine."""

    engine: Any
    model_name: str = ""
    max_tokens: int = 400
    temperature: float = 0.1
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _body(self, messages: list[BaseMessage], stop: list[str] | None, **kw: Any) -> dict:
        body = {"messages": convert_to_openai_messages(messages),
                "max_tokens": kw.get("max_tokens", self.max_tokens),
                "temperature": kw.get("temperature", self.temperature),
                "cache_prompt": kw.get("cache_prompt", True),   # reuse the KV cache of the shared prefix
                "repeat_penalty": 1.1}
        if stop:
            body["stop"] = stop
        if kw.get("logprobs") or kw.get("top_logprobs"):
            body.update(logprobs=True, top_logprobs=int(kw.get("top_logprobs") or 5))
        return body

    def _generate(self, messages, stop=None, run_manager=None, **kw: Any) -> ChatResult:
        r = self.engine.complete(self._body(messages, stop, **kw))
        choice = r["choices"][0]
        text = choice["message"].get("content") or ""
        meta = {"usage": r.get("usage"), "timings": r.get("timings"), "model": self.model_name}
        if choice.get("logprobs"):   # the shape Ollama uses: one entry per generated token
            meta["logprobs"] = choice["logprobs"].get("content") or []
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, response_metadata=meta))])

    def _stream(self, messages, stop=None, run_manager=None, **kw: Any) -> Iterator[ChatGenerationChunk]:
        for delta in self.engine.stream(self._body(messages, stop, **kw)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager:
                run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk


# ---------------------------------------------------------------- ollama


def ollama_check(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """Reachability and presence of the configured model tag, with the exact fix."""
    import ollama

    host, tag = settings.llm.ollama_host, settings.llm.ollama_model
    try:
        listed = ollama.Client(host=host, timeout=timeout).list()
    except Exception as exc:  # httpx.ConnectError, timeouts, bad responses
        return {"reachable": False, "host": host, "model": tag, "error": str(exc) or type(exc).__name__,
                "fix": f"Ollama auf {host} starten (`ollama serve`) oder OLLAMA_HOST korrigieren"}
    names = {m.model for m in listed.models}
    present = tag in names or (":" not in tag and f"{tag}:latest" in names)
    out: dict[str, Any] = {"reachable": True, "host": host, "model": tag, "model_present": present,
                           "models": sorted(n for n in names if n)}
    if not present:
        out["fix"] = f"ollama pull {tag}"
    return out


def _ollama_chat(settings: Settings) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    status = ollama_check(settings)
    if not status["reachable"]:
        raise BackendUnavailable(f"Ollama unter {status['host']} ist nicht erreichbar ({status['error']})",
                                 f"Ollama at {status['host']} is unreachable ({status['error']})", status["fix"])
    if not status["model_present"]:
        raise BackendUnavailable(f"Das Modell {status['model']} ist auf dem Ollama-Server nicht vorhanden",
                                 f"Model {status['model']} is not pulled on the Ollama server", status["fix"])
    return ChatOllama(model=settings.llm.ollama_model, base_url=settings.llm.ollama_host,
                      temperature=settings.llm.temperature, num_ctx=settings.llm.n_ctx,
                      num_predict=settings.llm.max_tokens, num_thread=settings.llm.threads,
                      client_kwargs={"timeout": settings.llm.timeout_s})


# ---------------------------------------------------------------- factory


def get_chat_model(settings: Settings) -> BaseChatModel:
    if settings.llm.backend == "ollama":
        return _ollama_chat(settings)
    engine = EmbeddedEngine.get(settings)
    return EmbeddedChat(engine=engine, model_name=engine.info.name, max_tokens=settings.llm.max_tokens,
                        temperature=settings.llm.temperature)


def model_label(settings: Settings) -> str:
    """Human/JSON label of the model that answers (no loading)."""
    if settings.llm.backend == "ollama":
        return f"ollama:{settings.llm.ollama_model}"
    name = settings.llm.model
    return f"llamacpp:{gguf.MODELS[name].name if name in gguf.MODELS else name.rsplit('/', 1)[-1]}"


_YES, _NO = ("ja", "yes"), ("nein", "ne", "no")


def yes_probability(llm: BaseChatModel, messages: list[BaseMessage]) -> float:
    """P(yes) of a one-word yes/no answer: the first token's top log-probabilities, renormalised
    over yes and no words. A backend that returns no log-probabilities gives 1.0 or 0.0 from the
    word itself, so the decision still works, only less finely."""
    if isinstance(llm, EmbeddedChat):
        options = {"max_tokens": 1, "temperature": 0}
    else:   # Ollama takes sampling settings only inside `options`, which replaces the model's own
        kept = {k: getattr(llm, k, None) for k in ("num_ctx", "num_thread", "num_gpu", "seed")}
        options = {"options": {**{k: v for k, v in kept.items() if v is not None}, "num_predict": 1, "temperature": 0}}
    try:
        msg = llm.invoke(messages, logprobs=True, top_logprobs=10, **options)
    except BackendUnavailable:
        raise
    except Exception as exc:
        _raise_if_unreachable(exc, "antwortet nicht", "does not answer")
        raise
    entries = (msg.response_metadata or {}).get("logprobs") or []
    yes = no = 0.0
    for alt in (entries[0].get("top_logprobs") or [entries[0]]) if entries else []:
        word = str(alt.get("token", "")).strip().lower()
        if word.startswith(_YES):
            yes += math.exp(alt["logprob"])
        elif word.startswith(_NO):
            no += math.exp(alt["logprob"])
    if yes + no > 0:
        return yes / (yes + no)
    word = str(msg.content or "").strip().lower()
    return 1.0 if word.startswith(_YES) else 0.0


def stream_text(llm: BaseChatModel, messages: list[BaseMessage]) -> Iterator[str]:
    """Stream plain text; map connection failures of any backend to BackendUnavailable."""
    try:
        for chunk in llm.stream(messages):
            if chunk.content:
                yield chunk.content if isinstance(chunk.content, str) else str(chunk.content)
    except BackendUnavailable:
        raise
    except Exception as exc:
        _raise_if_unreachable(exc, "ist während der Antwort ausgefallen", "failed mid-answer")
        raise


def _raise_if_unreachable(exc: Exception, what_de: str, what_en: str) -> None:
    """A connection failure of any backend (httpx, ollama) becomes BackendUnavailable with a fix;
    anything else is the caller's to re-raise."""
    name = type(exc).__name__
    if any(s in name for s in ("Connect", "Timeout", "ResponseError", "RemoteProtocol", "ReadError")):
        raise BackendUnavailable(f"Das Sprachmodell {what_de} ({name}: {exc})",
                                 f"The language model {what_en} ({name}: {exc})",
                                 "Backend prüfen (`pilot-assistant doctor`) und erneut fragen") from None
