"""Verbatim findings for a German section the model could not ground: whole sentences of the
retrieved passages (PDF line wraps joined, fragments and headings refused), on the project
and the section's topic, cited and grounded by construction (the sentence check keeps them)."""
from __future__ import annotations

from assistant import text as T
from assistant.drafting import quotes, verify
from assistant.drafting.record import Section, SourceRef
from assistant.types import Chunk, Hit

PDF_PAGE = ("1. Ausgangslage\n"
            "Vom 02.03.2026 bis zum 30.04.2026 haben 60 Beschäftigte des Amtes für Umwelt openDesk\n"
            "im Arbeitsalltag erprobt. Dateiablage und Chat wurden am häufigsten genutzt.\n"
            "Beratungsfolge\n"
            "Gremium Sitzung\n"
            "6. Datenschutz, Informationssicherheit, Beteiligung und Barrierefreiheit\n"
            "Die Datenschutzbeauftragte hat das Verfahren geprüft.\n")
FRAGMENT = ("aktiver Nutzender und der Anteil der Antworten mit korrekter Quellenangabe.\n"
            "Der Betrieb von openDesk im eigenen Rechenzentrum vermeidet die Abhängigkeit von einem Anbieter.")
OFF_TOPIC = "Die Stadt Kiel hat ihre Straßenbeleuchtung im Jahr 2024 vollständig auf LED umgestellt."


def hit(n: int, text: str) -> Hit:
    return Hit(chunk=Chunk(chunk_id=f"c{n}", doc_id=f"d{n}", text=text, source=f"/corpus/doc{n}.pdf",
                           title=f"Dokument {n}", type="council", page=n), score=1.0, rank=n)


def test_pdf_line_wraps_are_joined_and_headings_stay_apart():
    sents = quotes.sentences(PDF_PAGE)
    assert "Vom 02.03.2026 bis zum 30.04.2026 haben 60 Beschäftigte des Amtes für Umwelt openDesk im " \
           "Arbeitsalltag erprobt." in sents
    assert "1. Ausgangslage" in sents and "Beratungsfolge" in sents and "Gremium Sitzung" in sents
    assert not any(s.startswith("1. Ausgangslage Vom") for s in sents)
    assert "Die Datenschutzbeauftragte hat das Verfahren geprüft." in sents   # a numbered heading stays apart


def test_only_whole_prose_sentences_are_quotable():
    assert quotes.quotable("Dateiablage und Chat wurden in allen Ämtern am häufigsten genutzt.")
    assert not quotes.quotable("aktiver Nutzender und der Anteil der Antworten mit korrekter Quellenangabe.")
    assert not quotes.quotable("Beratungsfolge")
    assert not quotes.quotable("| Gremium | Sitzung | Zuständigkeit | Status der Beratung im Rat. |")
    assert not quotes.quotable("Mehr dazu unter https://example.org/opendesk-bericht-der-stadt.html.")


def test_a_section_without_citations_gets_cited_findings_on_project_and_topic():
    hits = [hit(1, FRAGMENT), hit(2, OFF_TOPIC), hit(3, PDF_PAGE)]
    sec = Section(id="souveraenitaet", heading="Digitale Souveränität", text="",
                  sources=[SourceRef(n=0, title=h.chunk.title, source=h.chunk.source, chunk_id=h.chunk.chunk_id)
                           for h in hits])
    terms = T.stems("openDesk Bürgeramt Kollaborationsplattform")
    added = quotes.add_quotes(sec, hits, "digitale Souveränität Open Source openDesk im Bürgeramt", terms,
                              topic=T.stems("Souveränität Open Source Abhängigkeit Anbieter Nachnutzung"))
    assert added == 1
    assert "„Der Betrieb von openDesk im eigenen Rechenzentrum vermeidet die Abhängigkeit von einem Anbieter“ [1]." \
        in sec.text
    assert "Kiel" not in sec.text and "aktiver Nutzender" not in sec.text     # off topic; a fragment
    cited = sec.cited
    assert [r.chunk_id for r in cited] == ["c1"] and cited[0].quote.startswith("Der Betrieb von openDesk")
    assert sec.warnings and "wörtliche Fundstelle" in sec.warnings[0]
    # grounded by construction: the sentence check of every generated sentence keeps it
    found = "\n".join(line for line in sec.text.splitlines() if line.startswith("- „"))
    v = verify.check_text(found, [h.chunk.text for h in hits[:1]], "openDesk im Bürgeramt", language="de")
    assert not v.removed and "Rechenzentrum" in v.text


def test_a_section_that_cites_already_or_has_nothing_on_topic_is_left_alone():
    hits = [hit(1, FRAGMENT)]
    refs = [SourceRef(n=1, title="Dokument 1", source="/corpus/doc1.pdf", chunk_id="c1")]
    sec = Section(id="a", heading="A", text="Der Pilot läuft im Bürgeramt [1].", sources=refs)
    assert quotes.add_quotes(sec, hits, "openDesk Souveränität", T.stems("openDesk")) == 0
    assert sec.text == "Der Pilot läuft im Bürgeramt [1]."
    empty = Section(id="b", heading="B", text="", sources=[SourceRef(n=0, title="D", source="s", chunk_id="c2")])
    assert quotes.add_quotes(empty, [hit(2, OFF_TOPIC)], "openDesk Souveränität", T.stems("openDesk")) == 0
    assert empty.text == "" and not empty.warnings


def test_a_related_paper_is_quoted_on_topic_another_projects_paper_only_when_it_names_the_project():
    """Seen in a real draft: another project's "an impact assessment is therefore not needed"
    quoted in the openDesk draft's section on data protection."""
    other = ("Eine Datenschutz-Folgenabschätzung ist deshalb nach Einschätzung der Datenschutzbeauftragten "
             "für die Datenplattform nicht erforderlich.")
    related = ("Die Datenschutzbeauftragte hat die Erprobung begleitet; eine Datenschutz-Folgenabschätzung "
               "wird vor dem Regelbetrieb erstellt.")
    hits = [hit(1, other), hit(2, related)]
    topic = T.stems("Datenschutz IT-Sicherheit BSI IT-Grundschutz Datenschutz-Folgenabschätzung")
    terms = T.stems("openDesk Bürgeramt")

    def section() -> Section:
        return Section(id="datenschutz", heading="Datenschutz und IT-Sicherheit", text="",
                       sources=[SourceRef(n=0, title=h.chunk.title, source=h.chunk.source, chunk_id=h.chunk.chunk_id)
                                for h in hits])

    sec = section()
    assert quotes.add_quotes(sec, hits, "Datenschutz IT-Sicherheit openDesk im Bürgeramt", terms, topic=topic,
                             related={"d2"}) == 1
    assert "Die Datenschutzbeauftragte hat die Erprobung begleitet" in sec.text and "Datenplattform" not in sec.text
    alone = section()
    assert quotes.add_quotes(alone, hits, "Datenschutz IT-Sicherheit openDesk im Bürgeramt", terms, topic=topic) == 0
    assert alone.text == ""
