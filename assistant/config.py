"""All settings in one place.

Precedence, lowest first: defaults < ``pilot-assistant.toml`` < environment
(``PILOT_ASSISTANT_*``, ``OLLAMA_HOST``) < CLI flags. Every setting has a dotted
name (``llm.backend``); the environment spells it ``PILOT_ASSISTANT_LLM__BACKEND``
and a few common ones have short aliases (``PILOT_ASSISTANT_DATA_DIR``,
``PILOT_ASSISTANT_BACKEND``, ``PILOT_ASSISTANT_MODEL``, ``PILOT_ASSISTANT_THREADS``).
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

ENV_PREFIX = "PILOT_ASSISTANT_"
CONFIG_FILE = "pilot-assistant.toml"

# files that ship beside the package: prompts and templates, the starter corpus, the suites
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROMPTS_DIR = PROJECT_ROOT / "prompts"
CORPUS_DIR = PROJECT_ROOT / "corpus"
SUITES_DIR = PROJECT_ROOT / "evals" / "suites"
BACKENDS = ("llamacpp", "ollama")

# short environment names users and scripts reach for first
ENV_ALIASES = {
    "DATA_DIR": "data_dir",
    "BACKEND": "llm.backend",
    "MODEL": "llm.model",
    "THREADS": "llm.threads",
    "OLLAMA_MODEL": "llm.ollama_model",
    "STORE_URL": "store.url",
}


@dataclass
class LLMSettings:
    backend: str = "llamacpp"
    # embedded: a name from assistant/runtime/gguf.py or a path to a .gguf file
    model: str = "qwen2.5-coder-1.5b-instruct"
    # ollama: a model tag on the city's server (see README for recommendations)
    ollama_model: str = "qwen2.5:7b-instruct"
    ollama_host: str = "http://127.0.0.1:11434"
    threads: int = 2
    n_ctx: int = 4096
    max_tokens: int = 400
    temperature: float = 0.1
    timeout_s: float = 300.0


@dataclass
class RetrievalSettings:
    k: int = 5                 # passages that go into a prompt
    candidates: int = 30       # per retriever, before fusion
    rrf_k: int = 60
    min_score: float = 0.80    # cosine similarity below which a dense hit is "not relevant"
    # A question naming something the index never mentions is refused without asking the
    # model, unless a passage is this similar anyway (a paraphrase such as "Stromverbrauch"
    # for "Energiebedarf"). Calibrated on evals/suites/starter.yaml (e5-small cosine).
    unknown_term_similarity: float = 0.875
    # Characters of source text in a chat or draft-section prompt (whole sentences, chosen across all hits).
    # Every ~2.3 characters cost one token of prompt processing: ~90 tokens/s for the 1.5B
    # model on 2 cores with xllamacpp, so 1,600 characters mean ~7 s to the first token.
    context_chars: int = 1600
    context_chars_per_passage: int = 600


@dataclass
class StoreSettings:
    url: str = ""              # empty: embedded PersistentClient; else a `chroma run` server
    collection_prefix: str = "pilot"
    # store.url behind an authenticating proxy (or Chroma's token auth): sent as
    # `Authorization: Bearer <token>`; the URL may carry a path prefix (https://proxy/chroma)
    token: str = ""
    tenant: str = ""           # empty: Chroma's default_tenant / default_database
    database: str = ""


@dataclass
class IngestSettings:
    timeout_s: float = 60.0    # per file, in a worker process
    memory_mb: int = 1536      # per worker (address-space limit)
    max_file_mb: int = 100
    max_pages: int = 2000
    workers: int = 2
    ocr: bool = True


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    auth_file: str = ""
    max_upload_mb: int = 50
    history_retention_days: int = 90
    audit_log_text: bool = False


@dataclass
class Settings:
    data_dir: Path = Path("data")
    llm: LLMSettings = field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from

    # --- derived paths: one place decides the layout of the data dir ---
    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def documents_dir(self) -> Path:
        """Uploaded files the UI may serve back (Gradio allowed_paths points here only)."""
        return self.data_dir / "documents"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def drafts_dir(self) -> Path:
        return self.data_dir / "drafts"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def council_db(self) -> Path:
        """Council procedures: papers, consultations, decisions and tasks (``assistant/council``)."""
        return self.data_dir / "council.sqlite3"

    def get(self, dotted: str) -> Any:
        obj: Any = self
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data_dir"] = str(self.data_dir)
        d.pop("sources", None)
        return d


def _coerce(current: Any, value: Any, name: str) -> Any:
    """Convert a TOML/env/flag value to the type of the default."""
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on", "ja"):
                    return True
                if value.lower() in ("0", "false", "no", "off", "nein", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, Path):
            return Path(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Ungültiger Wert für {name}: {value!r} (erwartet {type(current).__name__})",
            f"Invalid value for {name}: {value!r} (expected {type(current).__name__})",
            f"Wert von {name} korrigieren",
        ) from None


def _set(settings: Settings, dotted: str, value: Any, origin: str) -> None:
    parts = dotted.split(".")
    obj: Any = settings
    for part in parts[:-1]:
        if not hasattr(obj, part) or part == "sources":
            raise ConfigError(f"Unbekannte Einstellung: {dotted}", f"Unknown setting: {dotted}",
                              "Siehe README, Abschnitt Konfiguration")
        obj = getattr(obj, part)
    last = parts[-1]
    if not dataclasses.is_dataclass(obj) or last not in {f.name for f in dataclasses.fields(obj)} \
            or dataclasses.is_dataclass(getattr(obj, last)) or last == "sources":
        raise ConfigError(f"Unbekannte Einstellung: {dotted}", f"Unknown setting: {dotted}",
                          "Siehe README, Abschnitt Konfiguration")
    setattr(obj, last, _coerce(getattr(obj, last), value, dotted))
    settings.sources[dotted] = origin


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if environ.get("OLLAMA_HOST"):
        host = environ["OLLAMA_HOST"]
        out["llm.ollama_host"] = host if "://" in host else f"http://{host}"
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        name = key[len(ENV_PREFIX):]
        out[ENV_ALIASES.get(name, name.lower().replace("__", "."))] = value
    return out


def load(overrides: Mapping[str, Any] | None = None, *, config_file: str | Path | None = None,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Build the effective settings. ``overrides`` are CLI flags (dotted names, None = unset)."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = Path(config_file or environ.get(ENV_PREFIX + "CONFIG") or CONFIG_FILE)
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Konfigurationsdatei {path} ist fehlerhaft: {exc}",
                              f"Config file {path} is malformed: {exc}", f"{path} korrigieren") from None
        for name, value in _flatten(table).items():
            _set(settings, name, value, str(path))
    for name, value in _env_overrides(environ).items():
        _set(settings, name, value, "env")
    for name, value in (overrides or {}).items():
        if value is not None:
            _set(settings, name, value, "cli")
    if settings.llm.backend not in BACKENDS:
        raise ConfigError(
            f"Unbekanntes LLM-Backend {settings.llm.backend!r}; möglich sind: {', '.join(BACKENDS)}",
            f"Unknown LLM backend {settings.llm.backend!r}; choose one of: {', '.join(BACKENDS)}",
            "--backend llamacpp (eingebettet) oder --backend ollama",
        )
    if settings.llm.threads < 1:
        raise ConfigError("llm.threads muss >= 1 sein", "llm.threads must be >= 1", "--threads 1")
    return settings
