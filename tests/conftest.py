"""Shared fixtures.

The socket guard (pytest-socket, ``--allow-hosts`` in pyproject.toml) fails any
connection to a non-loopback address from Python code; the netns tests cover
native code. Tests use the small test model (Qwen2.5-Coder-0.5B-Instruct) with one
thread, because two-thread llama.cpp collapses when the other core is busy.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
ARTIFACTS.mkdir(exist_ok=True)

# keep third-party caches out of $HOME and out of the network
os.environ.setdefault("MPLCONFIGDIR", str(ARTIFACTS / "mpl"))
os.environ.setdefault("GRADIO_TEMP_DIR", str(ARTIFACTS / "gradio-tmp"))
for var in [k for k in os.environ if k.startswith("PILOT_ASSISTANT_") or k == "OLLAMA_HOST"]:
    del os.environ[var]   # a developer's own settings must not leak into tests

import assistant  # noqa: E402,F401  (applies the telemetry switches)
from assistant import config  # noqa: E402
from assistant.runtime import gguf  # noqa: E402


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    """The small GGUF, assembled once per checkout into test-artifacts/models."""
    return gguf.assemble(gguf.TEST_MODEL, ARTIFACTS / "models").path


@pytest.fixture
def settings(tmp_path: Path, test_model_path: Path) -> config.Settings:
    """Settings on a fresh data dir with the small model and one thread."""
    return config.load({"data_dir": str(tmp_path / "data"), "llm.model": str(test_model_path),
                        "llm.threads": 1, "llm.max_tokens": 160}, environ={}, config_file=tmp_path / "none.toml")


@pytest.fixture
def bare_settings(tmp_path: Path) -> config.Settings:
    """Settings without touching the model (for tests that never generate)."""
    return config.load({"data_dir": str(tmp_path / "data")}, environ={}, config_file=tmp_path / "none.toml")


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the real console script in a subprocess (as a user's script would)."""
    import subprocess

    exe = Path(sys.executable).with_name("pilot-assistant")
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture(scope="session")
def council_index(tmp_path_factory) -> Path:
    """A data dir with the starter corpus's council papers indexed (once per session; tests
    that change it work on a copy: ``shutil.copytree``)."""
    from assistant.ingest.pipeline import ingest

    data = tmp_path_factory.mktemp("council-index") / "data"
    settings = config.load({"data_dir": str(data)}, environ={}, config_file=data.parent / "none.toml")
    council = ROOT / "corpus" / "council"
    report = ingest(sorted([*council.glob("*.pdf"), *council.glob("*.md")]), settings)
    assert not report.failed and report.counts["ingested"] >= 12, report.to_dict()
    return data
