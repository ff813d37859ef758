#!/usr/bin/env python3
"""Build the external evaluation suites from the integreat-qa dataset (OMoS-QA, German part).

    python scripts/build_integreat_suites.py [--data ../shared/datasets/integreat-qa-de] [--out .]

Writes, relative to --out (the repository root):

- ``evals/corpora/integreat-de-{train,dev}/``: one UTF-8 ``.txt`` file per page
  (``<city>-<pageId>.txt``, the page lines joined with "\\n"; the first line is usually the
  page title), a ``<file>.txt.meta.yaml`` sidecar with the title (the first line) and the
  municipality, a ``README.md`` with attribution and licence, and an ``.ingestignore`` so that
  ``pilot-assistant ingest`` does not index the README itself;
- ``evals/suites/integreat-de-{train,dev}.yaml``: one item per question, with ``page`` (the page
  the question was written for) and ``answer_sentences`` (the annotated answer lines).

Dataset facts this relies on (index ranges and gold-line consistency are checked when building):

- ``answers`` is a list (or a JSON string of a list) of **0-based** line indices into
  ``context.split("\\n")``. Evidence: under 0-based indexing no answer ever includes line 0
  (the page title) and 110 answers end on the page's last line; under 1-based indexing 153
  answers would include the title and none could ever reach the last line. Answer lines also
  share more content words with the question under 0-based indexing (train 0.459 vs 0.415).
- Several questions share a page; each page file is written once. One dev page
  (muenchen-270273) comes in two versions differing in one word of a line that is in no
  answer; the version of the lowest item id is written.

Deterministic: no network, no clock, no randomness; stdlib + PyYAML only.

Data: CC BY 4.0, © Tür an Tür – Digitalfabrik gGmbH,
https://github.com/digitalfabrik/integreat-qa-dataset
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "integreat-qa-de"   # the dataset checkout beside the repo
SPLITS = {"train": "train_de.json", "dev": "dev_de.json"}
CITY_NAMES = {"muenchen": "München", "lkaugsburg": "Landkreis Augsburg", "rems-murr-kreis": "Rems-Murr-Kreis"}
SOURCE_URL = "https://github.com/digitalfabrik/integreat-qa-dataset"
PAPER = ("OMoS-QA: A Dataset for Cross-Lingual Extractive Question Answering in a German Migration "
         "Context (KONVENS 2024)")
ATTRIBUTION = "© Tür an Tür – Digitalfabrik gGmbH, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"


def answer_indices(raw) -> list[int]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, int) for i in value):
        raise ValueError(f"unexpected answers value {raw!r}")
    return sorted(set(value))


def page_file(entry: dict) -> str:
    city = str(entry["city"]).strip().lower().replace(" ", "-")
    return f"{city}-{int(entry['pageId'])}.txt"


def load_split(path: Path) -> tuple[list[dict], dict[str, list[str]], list[str]]:
    """Items (dataset order) and pages {file: lines}; notes about inconsistencies."""
    data = json.loads(path.read_text(encoding="utf-8"))
    versions: dict[str, list[tuple[int, str]]] = {}
    for e in data:
        versions.setdefault(page_file(e), []).append((int(e["id"]), e["context"]))
    pages: dict[str, list[str]] = {}
    notes = []
    for name, vs in versions.items():
        vs.sort()
        if len({c for _, c in vs}) > 1:
            notes.append(f"{name}: {len({c for _, c in vs})} versions of the page text; "
                         f"writing the one of item {vs[0][0]}")
        pages[name] = vs[0][1].split("\n")
    items = []
    for e in data:
        name = page_file(e)
        lines = pages[name]
        idx = answer_indices(e["answers"])
        if any(i < 0 or i >= len(lines) for i in idx):
            raise ValueError(f"item {e['id']}: answer index out of range for {name} ({len(lines)} lines)")
        own = e["context"].split("\n")
        if any(own[i] != lines[i] for i in idx):
            notes.append(f"item {e['id']}: a gold line differs from the written page {name}")
        items.append({"id": int(e["id"]), "question": e["question"].strip(), "city": e["city"], "page": name,
                      "answer_lines": [lines[i] for i in idx], "jaccard": e.get("jaccard"),
                      "source_language": e.get("sourceLanguage")})
    return items, pages, notes


def suite_item(split: str, it: dict) -> dict:
    out: dict = {"id": f"{split}-{it['id']}", "question": it["question"]}
    answerable = bool(it["answer_lines"])
    out["answerable"] = answerable
    if answerable:
        out["reference"] = " ".join(s.strip() for s in it["answer_lines"])
        out["gold_sources"] = [it["page"]]
    # the page the question was written for: also for unanswerable items (the loader forbids
    # gold_sources there), so an oracle condition can show the model exactly this page
    out["page"] = it["page"]
    if answerable:
        out["answer_sentences"] = list(it["answer_lines"])
    # each question was asked in one city's app: it searches that city's pages only
    out["municipality"] = CITY_NAMES.get(it["city"], it["city"])
    out["tags"] = [it["city"]] + ([] if answerable else ["unanswerable"])
    extra = []
    if it.get("jaccard") is not None:
        extra.append(f"annotator agreement (jaccard) {float(it['jaccard']):.2f}")
    if it.get("source_language"):
        extra.append(f"source language {it['source_language']}")
    if extra:
        out["notes"] = "; ".join(extra)
    return out


HEADER = """\
# integreat-de-{split}: {n} German questions on {p} pages of the Integreat app (migration
# counselling) of München, Landkreis Augsburg and Rems-Murr-Kreis; {u} of them cannot be
# answered from their page (answerable: false).
#
# Built by scripts/build_integreat_suites.py from the integreat-qa dataset (OMoS-QA),
# split "{split}" of dataset/languages/de/splits/ – do not edit by hand, re-run the script.
# Source: {url}
# Paper:  {paper}
# Data:   {attribution}
# Changes: pages split into one text file per page (evals/corpora/integreat-de-{split}/);
#          answer line indices (0-based) resolved to the lines themselves; items in a fixed
#          pseudo-random order (sha256 of the id), so `eval --limit N` takes a fair sample.
#
# Fields beyond the suite format: `page` (the page the question was asked about – also for
# unanswerable items, for an oracle condition) and `answer_sentences` (the annotated answer
# lines; `reference` is the same lines joined with a space). `municipality` is the city whose
# app the question was asked in: `eval` searches that city's pages only, as the app does
# (`eval --all-municipalities` searches all three, as suite version 1 did).
"""

README = """\
# integreat-de-{split} – corpus for the suite `evals/suites/integreat-de-{split}.yaml`

{p} pages of the Integreat app (migration counselling information) of München, Landkreis Augsburg
and Rems-Murr-Kreis, in German, one file per page: `<city>-<pageId>.txt`. Each line of a file is one
"sentence" of the dataset (the answer annotations refer to these lines); the first line is usually
the page title. `<file>.txt.meta.yaml` carries that title and the municipality for the index.

- Source: integreat-qa dataset (OMoS-QA), {url},
  `dataset/languages/de/splits/{file}` (split "{split}").
- Paper: {paper}.
- Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
  https://creativecommons.org/licenses/by/4.0/ – © Tür an Tür – Digitalfabrik gGmbH.
- Changes: the dataset's page texts (field `context`) were split into one file per page; questions
  and answer annotations were moved to the suite file. No text was altered.{extra}

Generated by `scripts/build_integreat_suites.py`; do not edit by hand.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def build(data_dir: Path, out_dir: Path) -> dict[str, dict[str, int]]:
    counts = {}
    for split, fname in SPLITS.items():
        items, pages, notes = load_split(data_dir / fname)
        corpus = out_dir / "evals" / "corpora" / f"integreat-de-{split}"
        corpus.mkdir(parents=True, exist_ok=True)
        for old in list(corpus.glob("*.txt")) + list(corpus.glob("*.txt.meta.yaml")):
            old.unlink()   # a rebuild must not leave pages of an older dataset version behind
        for name in sorted(pages):
            lines = pages[name]
            (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            city = name.rsplit("-", 1)[0]
            meta = {"title": lines[0].strip(), "municipality": CITY_NAMES.get(city, city)}
            (corpus / f"{name}.meta.yaml").write_text(
                yaml.dump(meta, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
        extra = ("\n- Note: " + "; ".join(n for n in notes if "versions" in n) + ".") if any("versions" in n for n in notes) else ""
        (corpus / "README.md").write_text(README.format(split=split, p=len(pages), url=SOURCE_URL, file=fname,
                                                        paper=PAPER, extra=extra), encoding="utf-8")
        (corpus / ".ingestignore").write_text("# documentation of the corpus, not content for the assistant\nREADME.md\n",
                                              encoding="utf-8")
        entries = [suite_item(split, it) for it in items]
        # The dataset lists the unanswerable questions in clusters; a fixed pseudo-random order makes the
        # first N items (`pilot-assistant eval --limit N`) a fair sample.
        entries.sort(key=lambda e: hashlib.sha256(e["id"].encode()).hexdigest())
        n_unans = sum(1 for e in entries if not e["answerable"])
        doc = {"name": f"integreat-de-{split}", "version": "2",
               "description": (f"Integreat-App (München, Landkreis Augsburg, Rems-Murr-Kreis): {len(entries)} Fragen "
                               f"zu {len(pages)} Seiten, {n_unans} davon ohne Antwort auf ihrer Seite. "
                               f"Daten: {ATTRIBUTION}."),
               "corpus": f"../corpora/integreat-de-{split}",
               "items": entries}
        body = yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120, indent=2)
        header = HEADER.format(split=split, n=len(entries), p=len(pages), u=n_unans, url=SOURCE_URL, paper=PAPER,
                               attribution=ATTRIBUTION)
        suite = out_dir / "evals" / "suites" / f"integreat-de-{split}.yaml"
        suite.parent.mkdir(parents=True, exist_ok=True)
        suite.write_text(header + "\n" + body, encoding="utf-8")
        if yaml.safe_load(suite.read_text(encoding="utf-8"))["items"] != entries:   # round trip
            raise RuntimeError(f"{suite}: YAML round trip changed the items")
        for n in notes:
            print(f"  note ({split}): {n}", file=sys.stderr)
        counts[split] = {"items": len(entries), "answerable": len(entries) - n_unans, "unanswerable": n_unans,
                         "pages": len(pages)}
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train_de.json and dev_de.json")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root to write evals/ into (default: this repository)")
    args = ap.parse_args(argv)
    counts = build(args.data, args.out)
    print(f"{'split':6} {'items':>6} {'answerable':>11} {'unanswerable':>13} {'pages':>6}")
    for split, c in counts.items():
        print(f"{split:6} {c['items']:>6} {c['answerable']:>11} {c['unanswerable']:>13} {c['pages']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
