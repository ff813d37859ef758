"""A large, realistic German council archive for benchmarks, generated locally and reproducibly.

    .venv/bin/python bench/corpusgen.py --chunks 10000 [--seed 0] [--show 3]

The sentences come from the starter corpus's council papers (``corpus/council/src``); their
amounts, percentages, dates, paper numbers, towns and topics become slots that every
generated paper fills anew: 15-20 years of Beschlussvorlagen, Niederschriften, Anträge and
Mitteilungen of some sixty towns on a hundred municipal topics, with street names, people
and numbers that make a long tail of rare words next to the common ones, as a real archive
has. Same seed, same archive; nothing is downloaded.

:func:`generate` yields documents (a record and its chunks, pages numbered as a PDF would
be); :func:`vectors` gives each chunk a synthetic vector near really embedded texts of its
topic (embedding a million chunks here would take two days).
"""
from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.types import Chunk  # noqa: E402

SOURCES = ROOT / "corpus" / "council" / "src"

TOWNS = ("Musterstadt Ahrweiler Altenkirchen Bad Kreuznach Bingen Boppard Cochem Daun Diez Eisenberg Frankenthal "
         "Germersheim Grünstadt Haßloch Idar-Oberstein Ingelheim Kaiserslautern Kirchheimbolanden Kusel Landau "
         "Lahnstein Mayen Montabaur Neustadt Neuwied Nieder-Olm Pirmasens Prüm Remagen Saarburg Schifferstadt "
         "Simmern Sinzig Speyer Trier Wittlich Worms Zweibrücken Andernach Annweiler Bitburg Bendorf Hachenburg "
         "Hermeskeil Konz Lauterecken Linz Meisenheim Nastätten Oppenheim Osthofen Rockenhausen Selters Traben-Trarbach "
         "Wörrstadt Westerburg Wirges Alzey Bad Ems Gerolstein Kastellaun").split()
DISTRICTS = ("Altstadt Nordstadt Südstadt Weststadt Oststadt Hafenviertel Bahnhofsviertel Kernstadt Oberdorf Unterdorf "
             "Neubaugebiet Gewerbepark Talaue Bergviertel Schlossberg Mühlental Kirchberg Lindenhof Sonnenhang Rheinufer"
             ).split()
STREETS = ("Hauptstraße Bahnhofstraße Schulstraße Gartenstraße Lindenweg Kirchgasse Marktplatz Rheinallee Mühlweg "
           "Bergstraße Waldstraße Ringstraße Am Sportplatz Friedhofsweg Industriestraße Rosenstraße Goethestraße "
           "Schillerplatz Talstraße Brunnenweg").split()
SURNAMES = ("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf "
            "Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier "
            "Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz "
            "Möller Weiß Jung Hahn Schubert Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz "
            "Baumann Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt Stein").split()
TOPICS = (
    "Radwegenetz Kita-Ausbau Ganztagsschule Schulsanierung Freibadsanierung Hallenbad Feuerwehrgerätehaus "
    "Löschfahrzeug Straßenbeleuchtung LED-Umrüstung Glasfaserausbau Breitbandversorgung Mobilfunkversorgung "
    "Wärmeplanung Nahwärmenetz Photovoltaik Solarpark Windenergie Klimaschutzkonzept Klimaanpassung "
    "Starkregenvorsorge Hochwasserschutz Regenrückhaltebecken Kanalsanierung Kläranlage Trinkwasserversorgung "
    "Abfallwirtschaft Wertstoffhof Friedhofssatzung Bestattungswald Stadtbibliothek Museum Stadtarchiv "
    "Tourismuskonzept Innenstadtbelebung Leerstandsmanagement Wochenmarkt Gewerbegebiet Wirtschaftsförderung "
    "Bebauungsplan Flächennutzungsplan Wohnbaugebiet Sozialwohnungen Mietspiegel Stadtsanierung Dorferneuerung "
    "Denkmalschutz Parkraumbewirtschaftung Parkhaus Ladeinfrastruktur Carsharing Busverkehr Rufbus Bahnhofsumfeld "
    "Barrierefreiheit Seniorenbeirat Jugendzentrum Spielplatz Sportplatz Kunstrasenplatz Turnhalle Vereinsförderung "
    "Integrationskonzept Flüchtlingsunterbringung Ehrenamtskarte Bürgerhaushalt Bürgerbeteiligung Ratsinformationssystem "
    "Online-Zugangsgesetz Digitalisierung Bürgerbüro Terminvergabe E-Akte Open-Data-Portal KI-Assistent Datenplattform "
    "Informationssicherheit Rechenzentrum Schul-IT Tablets Verwaltungsmodernisierung Personalentwicklung Stellenplan "
    "Haushaltssatzung Nachtragshaushalt Grundsteuer Gewerbesteuer Hundesteuer Gebührenkalkulation Straßenausbaubeiträge "
    "Winterdienst Grünflächenpflege Baumkataster Streuobstwiese Naturschutzgebiet Ausgleichsflächen Lärmaktionsplan "
    "Verkehrsberuhigung Tempo-30-Zone Schulwegsicherung Kreisverkehr Brückensanierung Ortsdurchfahrt Marktplatzumgestaltung "
    "Städtepartnerschaft Stadtfest Weihnachtsmarkt Musikschule Volkshochschule Kulturzentrum Stadthalle").split()
PAPERS = ("Beschlussvorlage", "Niederschrift", "Antrag", "Mitteilung", "Anfrage", "Antwort der Verwaltung")
COMMITTEES = ("Stadtrat", "Hauptausschuss", "Bauausschuss", "Finanzausschuss", "Ausschuss für Umwelt und Klima",
              "Ausschuss für Digitalisierung", "Sozialausschuss", "Schulträgerausschuss", "Werkausschuss",
              "Ortsbeirat", "Verkehrsausschuss", "Kulturausschuss")
# words of the source papers that name their own topic: they become the generated paper's topic
OWN_TOPICS = re.compile(r"KI-Assistent(?:en)?|MUSA(?: – Musterstadt-Assistent)?|urbane[nr]? Datenplattform|"
                        r"Datenplattform|openDesk|Innovationsstrategie|KI-Register|Grundschutz|digitale[nr]? Souveränität")

_SLOTS = [
    (re.compile(r"\b\d{1,3}(?:\.\d{3})+(?:,\d{2})?\s?(?:Euro|EUR|€)"), "{amount}"),
    (re.compile(r"\b\d+(?:,\d+)?\s?(?:Prozent|%)"), "{pct}"),
    (re.compile(r"\b\d{1,2}\.\s?\d{1,2}\.\s?20\d\d\b"), "{date}"),
    (re.compile(r"\b\d{4}/20\d\d\b"), "{paper}"),
    (re.compile(r"\b20\d\d\b"), "{year}"),
    (re.compile(r"Musterstadt"), "{town}"),
    (OWN_TOPICS, "{topic}"),
    (re.compile(r"(?<![\w{])\d{2,4}(?![\w}])"), "{num}"),
]


def _templates() -> list[str]:
    """Sentences of the source papers with their particulars turned into slots."""
    from assistant.text import sentences

    out: list[str] = []
    for path in sorted(SOURCES.glob("*.md")):
        text = path.read_text(encoding="utf-8").split("---", 2)[-1]
        for block in re.split(r"\n\s*\n", text):
            if block.lstrip().startswith(("|", "#")) or "fiktiv" in block.lower():
                continue
            block = " ".join(re.sub(r"[*_>`]+|^\s*(?:\d+\.|[-–])\s", " ", ln).strip() for ln in block.splitlines())
            for sent in sentences(block):
                sent = " ".join(sent.replace("{", "(").replace("}", ")").split())
                if len(sent.split()) < 6:
                    continue
                for pattern, slot in _SLOTS:
                    count = iter(range(100))
                    sent = pattern.sub(lambda m, s=slot: s[:-1] + str(next(count)) + "}", sent)
                out.append(sent)
    return sorted(set(out))


class _Slots(dict):
    """Values for one chunk: the paper's own (town, year) as given, every other slot drawn anew."""

    def __init__(self, rng: random.Random, fixed: dict[str, str]) -> None:
        super().__init__(fixed)
        self.rng = rng

    def __missing__(self, key: str) -> str:
        rng, kind = self.rng, key.rstrip("0123456789")
        if kind == "amount":
            value = f"{rng.randint(2, 250000) * 10:,} Euro".replace(",", ".")
        elif kind == "pct":
            value = f"{rng.randint(1, 99)} Prozent"
        elif kind == "date":
            value = f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{self['year']}"
        elif kind == "paper":
            value = f"{rng.randint(1, 999):04d}/{int(self['year']) - rng.randint(0, 2)}"
        elif kind == "num":
            value = str(rng.randint(2, 9999))
        elif kind == "topic":
            value = self["topic0"] if rng.random() < 0.7 else _compound(rng)
        else:   # town, year
            value = self[kind + "0"] if kind + "0" in self else ""
        self[key] = value
        return value


SUFFIXES = ("konzept", "satzung", "förderung", "planung", "bericht", "kosten", "antrag", "maßnahme",
            "projekt", "verfahren", "richtlinie", "gutachten")


def _compound(rng: random.Random) -> str:
    topic = rng.choice(TOPICS)
    return topic if rng.random() < 0.6 or "-" in topic else topic + rng.choice(SUFFIXES)


@dataclass
class GeneratedDoc:
    doc_id: str
    source: str
    title: str
    topic: int            # index into TOPICS (vectors cluster by topic)
    chunks: list[Chunk]


def generate(n_chunks: int, seed: int = 0, *, prefix: str = "gen") -> Iterator[GeneratedDoc]:
    """Papers of 4-40 chunks (three chunks a page) until ``n_chunks`` chunks are out."""
    rng = random.Random(seed)
    templates = _templates()
    made = 0
    number = 0
    while made < n_chunks:
        number += 1
        year = rng.randint(2007, 2026)
        town = rng.choice(TOWNS)
        topic = rng.randrange(len(TOPICS))
        kind = rng.choice(PAPERS)
        committee = rng.choice(COMMITTEES)
        paper = f"{rng.randint(1, 999):04d}/{year}"
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        title = f"{kind} {paper}: {TOPICS[topic]} in {town}-{rng.choice(DISTRICTS)}"
        size = min(n_chunks - made, rng.choice((4, 6, 8, 10, 12, 15, 20, 25, 30, 40)))
        doc_id = hashlib.sha256(f"{prefix}-{seed}-{number}".encode()).hexdigest()
        source = f"/archiv/{town.lower()}/{year}/{number:07d}_{paper.replace('/', '-')}_{kind.split()[0].lower()}.pdf"
        chunks = []
        for i in range(size):
            values = _Slots(rng, {"town0": town, "topic0": TOPICS[topic], "year": str(year),
                                  "year0": str(year + rng.choice((-1, 0, 0, 0, 1)))})
            lines = [f"{TOPICS[topic]} – {rng.choice(STREETS)} {rng.randint(1, 120)}, {town}-{rng.choice(DISTRICTS)}, "
                     f"Az. {rng.randint(10, 69)}-{rng.randint(100, 999)}/{year % 100:02d}" if i % 3 == 0 else ""]
            for _ in range(rng.randint(5, 8)):
                lines.append(rng.choice(templates).format_map(values))
            if rng.random() < 0.3:
                lines.append(f"{rng.choice(('Frau', 'Herr'))} {rng.choice(SURNAMES)} ({committee}) "
                             f"{rng.choice(('fragt nach', 'begrüßt', 'kritisiert', 'bittet um Auskunft zu'))} "
                             f"{values['topic0']} und {_compound(rng)}.")
            text = " ".join(x for x in lines if x)
            chunks.append(Chunk(chunk_id=f"{doc_id}:{i}", doc_id=doc_id, text=text, source=source, title=title,
                                type="council", collection="council" if number % 5 else "archiv", page=i // 3 + 1,
                                chunk_index=i, char_start=0, char_end=len(text), date=date,
                                municipality=town, meta={"paper_number": paper, "paper_type": kind,
                                                         "committee": committee}))
        made += size
        yield GeneratedDoc(doc_id, source, title, topic, chunks)


class Vectors:
    """Synthetic vectors: per topic a few really embedded generated chunks, plus noise."""

    def __init__(self, seed: int = 0, per_topic: int = 1, noise: float = 0.03) -> None:
        from assistant.index import embeddings
        from assistant.index.embeddings import embed_passages, embedding_text

        embeddings.threads = lambda: 1   # a busy machine stalls two OpenMP threads at every barrier

        samples: list[list[str]] = [[] for _ in TOPICS]
        for doc in generate(len(TOPICS) * per_topic * 40, seed + 1, prefix="vec"):
            if len(samples[doc.topic]) < per_topic:
                samples[doc.topic].append(embedding_text(doc.chunks[0]))
        fill = [s or [TOPICS[i]] for i, s in enumerate(samples)]
        flat = [t for s in fill for t in s]
        vecs = embed_passages(flat)
        self.base, self.offsets, pos = vecs, [], 0
        for s in fill:
            self.offsets.append((pos, len(s)))
            pos += len(s)
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def __call__(self, doc: GeneratedDoc) -> np.ndarray:
        start, count = self.offsets[doc.topic]
        pick = self.base[start + self.rng.integers(0, count, len(doc.chunks))]
        out = pick + self.rng.normal(0, self.noise, pick.shape)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=2, help="print this many chunks")
    args = ap.parse_args()
    from collections import Counter

    from assistant.index.lexical import tokenize

    docs = chunks = 0
    df: Counter = Counter()
    shown = 0
    for doc in generate(args.chunks, args.seed):
        docs += 1
        for c in doc.chunks:
            chunks += 1
            df.update(set(tokenize(c.text)))
            if shown < args.show:
                print(f"--- {c.title} (S. {c.page})\n{c.text}\n")
                shown += 1
    print(f"{docs} papers, {chunks} chunks, {len(df)} distinct stems; "
          f"in >10% of chunks: {sum(1 for v in df.values() if v > chunks / 10)}, "
          f"in one chunk only: {sum(1 for v in df.values() if v == 1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
