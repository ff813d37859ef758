"""Command line: a thin layer over the core functions.

Each sub-command lives in its own module in this package with two functions,
``register(subparsers)`` and ``run(args, settings) -> int``. No module here holds
product logic; it parses flags, calls the core and prints (text or ``--json``).
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import __version__
from ..errors import UserError


def add_common(parser: argparse.ArgumentParser) -> None:
    """Flags every command understands (they override config file and environment)."""
    g = parser.add_argument_group("Allgemein / common")
    g.add_argument("--data-dir", dest="data_dir", help="Datenverzeichnis (Index, Verlauf, Modelle); Standard ./data")
    g.add_argument("--config", help="Pfad zu pilot-assistant.toml")
    g.add_argument("--backend", help="LLM-Backend: llamacpp (eingebettet) oder ollama")
    g.add_argument("--model", help="Modellname/GGUF-Pfad (llamacpp)")
    g.add_argument("--ollama-model", dest="ollama_model", help="Modell-Tag auf dem Ollama-Server")
    g.add_argument("--threads", type=int, help="CPU-Threads für llama.cpp")
    g.add_argument("--json", action="store_true", help="Ausgabe als JSON (für Skripte)")


def overrides(args: argparse.Namespace) -> dict:
    return {"data_dir": getattr(args, "data_dir", None), "llm.backend": getattr(args, "backend", None),
            "llm.model": getattr(args, "model", None), "llm.ollama_model": getattr(args, "ollama_model", None),
            "llm.threads": getattr(args, "threads", None)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pilot-assistant",
        description="Pilot Assistant – souveräner KI-Assistent für kommunale Innovationsprojekte.")
    parser.add_argument("--version", action="version", version=f"pilot-assistant {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="BEFEHL")
    for module in command_modules():
        module.register(sub)
    return parser


def command_modules() -> list:
    """The sub-command modules, in the order of --help (imported here: they import this module)."""
    from . import (
        ask_cmd,
        collection_cmd,
        council_cmd,
        doctor_cmd,
        draft_cmd,
        eval_cmd,
        funding_cmd,
        ingest_cmd,
        oparl_cmd,
        search_cmd,
        serve_cmd,
        setup_cmd,
        sync_cmd,
        user_cmd,
    )

    return [setup_cmd, doctor_cmd, ingest_cmd, search_cmd, ask_cmd, serve_cmd, draft_cmd, funding_cmd, eval_cmd,
            oparl_cmd, council_cmd, sync_cmd, user_cmd, collection_cmd]


def emit(data, as_json: bool, text: str | None = None) -> None:
    """Print a result as JSON (stable field names) or as text for people."""
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    elif text is not None:
        print(text)


def main(argv: list[str] | None = None) -> int:
    from .. import config

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        settings = config.load(overrides(args), config_file=getattr(args, "config", None))
        return int(args.run(args, settings) or 0)
    except UserError as exc:
        if getattr(args, "json", False):
            print(json.dumps(exc.to_dict(), ensure_ascii=False))
        print(f"Fehler: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Abgebrochen / interrupted", file=sys.stderr)
        return 130
