"""`pilot-assistant setup`: create the data dir and assemble the embedded model."""
from __future__ import annotations

from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("setup", help="Datenverzeichnis anlegen und eingebettetes Modell einrichten")
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..runtime.first_run import setup

    out = setup(settings)
    text = f"Datenverzeichnis: {out['data_dir']}"
    if "model_path" in out:
        text += f"\nModell {out['model']}: {out['model_path']} (SHA-256 {out['model_sha256'][:16]}… geprüft)"
    emit(out, args.json, text)
    return 0
