"""Switch off every phone-home of our dependencies before any of them is imported.

Imported first by ``assistant/__init__.py``. Each variable is set only where the
operator has not set it, so an admin can still opt in deliberately. Each switch was
checked against the installed versions; the zero-egress test (tests/test_egress.py)
proves the sum of them.
"""
import os

SWITCHES: dict[str, str] = {
    "GRADIO_ANALYTICS_ENABLED": "False",   # gradio: api.gradio.app version check + HF telemetry
    "GRADIO_RUN_HISTORY": "False",         # gradio 6: offers to sync run history to a HF bucket
    "ANONYMIZED_TELEMETRY": "False",       # chromadb (a no-op in 1.5, kept for older servers)
    "LANGSMITH_TRACING": "false",          # langchain: LangSmith tracing
    "LANGCHAIN_TRACING_V2": "false",
    "HF_HUB_OFFLINE": "1",                 # huggingface_hub (pulled in by gradio_client)
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply() -> dict[str, str]:
    """Apply the defaults; return the effective values (for `doctor`)."""
    for key, value in SWITCHES.items():
        os.environ.setdefault(key, value)
    return {key: os.environ.get(key, "") for key in SWITCHES}


def status() -> dict[str, dict[str, object]]:
    """Each switch with its value and whether it keeps the component quiet."""
    out: dict[str, dict[str, object]] = {}
    for key, want in SWITCHES.items():
        have = os.environ.get(key)
        out[key] = {"value": have, "off": have is not None and have.lower() == want.lower()}
    return out


apply()
