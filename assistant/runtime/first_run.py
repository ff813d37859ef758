"""First-run set-up: data dir and the embedded model (assembled once, verified)."""
from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import StorageError
from . import gguf
from .doctor import check_data_dir


def setup(settings: Settings) -> dict[str, Any]:
    if (problem := check_data_dir(settings.data_dir)):
        raise StorageError(problem["problem"], problem["problem"], problem["fix"])
    for sub in (settings.index_dir, settings.documents_dir, settings.runs_dir, settings.drafts_dir):
        sub.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"data_dir": str(settings.data_dir.resolve()), "backend": settings.llm.backend}
    if settings.llm.backend == "llamacpp":
        info = gguf.resolve(settings.llm.model, settings.models_dir)
        out.update(model=info.name, model_path=str(info.path), model_sha256=info.sha256, verified=info.verified)
    return out
