"""The package layout holds: domain packages in layers, no import cycles, one home per concept.

These read the source (ast), so they fail on a stray import long before it causes a
circular-import error at run time.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "assistant"

# lower layers never import higher ones; packages on one level do not import each other
LEVELS = {"": 0, "runtime": 1, "index": 2, "access": 3, "ingest": 4, "council": 5, "sources": 5, "answer": 6,
          "funding": 6, "drafting": 7, "evaluation": 8, "privacy": 8, "ui": 9, "cli": 10}   # `serve` starts the UI
TOP_LEVEL_MODULES = {"__init__", "__main__", "config", "errors", "types", "text", "frontmatter", "sovereign",
                     "auth", "history", "fsutil", "ical"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Absolute names of the project modules ``path`` imports."""
    mod = _module(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "assistant":
                continue
            for alias in node.names:   # "from . import chat" imports the module assistant.x.chat
                sub = f"{target}.{alias.name}"
                out.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "assistant"}
    return out


def _exists(module: str) -> bool:
    path = ROOT / module.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else ""


def _sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_top_level_holds_only_the_shared_modules_and_the_domain_packages():
    modules = {p.stem for p in PKG.glob("*.py")}
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert modules == TOP_LEVEL_MODULES
    assert packages == set(LEVELS) - {""}


def test_no_import_from_a_lower_layer_to_a_higher_one():
    wrong = []
    for path in _sources():
        mod = _module(path)
        if mod == "assistant.__main__":
            continue
        here = _package(mod)
        for target in _imports(path):
            there = _package(target)
            if there != here and there in LEVELS and LEVELS[there] >= LEVELS[here]:
                wrong.append(f"{mod} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph = {_module(p): {t for t in _imports(p, module_level_only=True) if t != _module(p)} for p in _sources()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt in graph and not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [node])
    # a package's __init__ importing its own modules is not a cycle in practice; the rest is
    real = [c for c in cycles if not any(m == c[0].rsplit(".", 1)[0] for m in c)]
    assert not real, f"import cycles: {real}"


def test_gradio_is_imported_only_under_ui():
    offenders = [str(p.relative_to(ROOT)) for p in _sources()
                 if "ui" not in p.relative_to(PKG).parts[:1]
                 and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "gradio" in ast.unparse(n)
                         for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))]
    assert not offenders


def test_files_are_replaced_only_through_fsutil():
    """One crash-safe writer: temp file, fsync, rename, directory fsync."""
    offenders = [str(p.relative_to(ROOT)) for p in _sources()
                 if p.name != "fsutil.py" and ("os.replace" in p.read_text(encoding="utf-8")
                                               or ".rename(" in p.read_text(encoding="utf-8"))]
    assert not offenders


def test_no_loading_modules_by_name():
    """Static imports only: a deleted or renamed module must fail loudly, not vanish."""
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if "import_module(" in p.read_text(encoding="utf-8")
                 and p.name != "gguf.py"]   # the model part packages are data, named by the lock file
    assert not offenders


def test_every_third_party_import_is_declared():
    declared = {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower().replace("_", "-")
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    # import name -> distribution name where they differ
    dist = {"yaml": "pyyaml", "docx": "python-docx", "odf": "odfpy", "fpdf": "fpdf2", "Stemmer": "pystemmer",
            "langchain_core": "langchain-core", "langchain_ollama": "langchain-ollama", "gradio_client": "gradio-client",
            "PIL": "pillow"}
    used = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else []
            used |= {n.split(".")[0] for n in names}
    third = {m for m in used if m not in sys.stdlib_module_names and m != "assistant"}
    missing = sorted(m for m in third if dist.get(m, m).lower().replace("_", "-") not in declared)
    assert not missing, f"imported but not in pyproject.toml: {missing}"


def test_lint_is_clean():
    """pyflakes errors (undefined names, unused imports) and import order, as configured in pyproject.toml."""
    import subprocess

    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run([str(ruff), "check", "assistant", "tests", "bench", "scripts", "corpus"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
