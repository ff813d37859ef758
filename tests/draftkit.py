"""Shared by the drafting and export tests: a scripted chat model, a tiny template, a small
corpus (one council paper, one programme, one report) and a filled-in draft."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any, Iterator

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant.errors import BackendUnavailable

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 5, 4)
MPSC = "modellprojekte-smart-cities"

COUNCIL = """---
title: "Antrag: KI-Assistent für das Bürgerbüro prüfen"
type: council
drucksache: "0412/2025"
date: 2025-03-12
municipality: Musterstadt
---
# Antrag der Fraktion Zukunft Musterstadt (Drucksache 0412/2025)

Beschlussvorschlag:
Die Verwaltung wird beauftragt, den Einsatz eines KI-Assistenten im Bürgerbüro zu prüfen. Der
Assistent soll auf eigenen Servern der Stadt betrieben werden und Open-Source-Software nutzen.

Sachverhalt:
Im Bürgerbüro warten Bürgerinnen und Bürger oft lange auf Auskünfte. Andere Städte setzen
KI-Assistenten bereits ein. Datenschutz und IT-Sicherheit nach BSI IT-Grundschutz sind zu beachten.
"""

TINY_TEMPLATE = """\
name: mini
title: "Mini-Vorlage"
version: 1
sections:
  - id: betreff
    heading: Betreff
    kind: static
    text: "{title}"
  - id: ausgangslage
    heading: Ausgangslage
    guidance: Beschlusslage des Rates aus den Quellen.
    word_limit: 40
    queries: ["Antrag KI-Assistent {title}"]
    source_types: [council, report]
  - id: finanzen
    heading: Finanzielle Auswirkungen
    kind: computed
    compute: financing
    word_limit: 0
    covers: [Kosten- und Finanzierungsplan]
  - id: datenschutz
    heading: Datenschutz und IT-Sicherheit
    word_limit: 40
    queries: ["Datenschutz IT-Sicherheit {title}"]
    source_types: [council, funding]
"""


class ScriptedChat(BaseChatModel):
    """Answers from a list (cycling); raises BackendUnavailable on the calls listed in fail_on."""

    responses: list[str] = ["Die Verwaltung prüft den Einsatz eines KI-Assistenten im Bürgerbüro [1]."]
    fail_on: list[int] = []
    calls: int = 0
    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages) -> str:
        if str(messages[-1].content).rstrip().endswith("Antworte nur mit Ja oder Nein."):
            return "Ja"      # the chat's answerability check: not an answer, not counted
        self.calls += 1
        self.prompts.append(messages[-1].content)
        if self.calls in self.fail_on:
            raise BackendUnavailable("Das Sprachmodell ist ausgefallen", "the model failed", "neu starten")
        return self.responses[(self.calls - 1) % len(self.responses)]

    def _generate(self, messages, stop=None, run_manager=None, **kw: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

    def _stream(self, messages, stop=None, run_manager=None, **kw: Any) -> Iterator[ChatGenerationChunk]:
        text = self._next(messages)
        for i in range(0, len(text), 7):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i:i + 7]))


def make_corpus(folder: Path) -> Path:
    (folder / "council").mkdir(parents=True)
    (folder / "funding").mkdir()
    (folder / "reports").mkdir()
    (folder / "council" / "antrag-0412-2025.md").write_text(COUNCIL, encoding="utf-8")
    shutil.copy(ROOT / "corpus" / "funding" / f"{MPSC}.md", folder / "funding")
    shutil.copy(ROOT / "corpus" / "reports" / "hamburg-llmoin.md", folder / "reports")
    return folder


def tiny_template(folder: Path) -> Path:
    path = folder / "mini.yaml"
    path.write_text(TINY_TEMPLATE, encoding="utf-8")
    return path


def filled_draft(settings, template: str = "beschlussvorlage", programme: str | None = MPSC):
    """A draft of the real template with every generated section written and cited (no model)."""
    from assistant.drafting import runner
    from assistant.drafting.record import SourceRef, save

    idea = runner.Idea(title="KI-Assistent im Bürgerbüro", description="Ein lokaler KI-Assistent beantwortet "
                         "Fragen zu Bürgerdiensten.", city="Musterstadt", department="Bürgerbüro",
                         budget=250000, duration_months=18)
    d = runner.start_draft(idea, template, settings, programme_id=programme, today=TODAY)
    for s in d.sections:
        if s.status == "pending":
            s.text = f"Zu „{s.heading}“ hat der Rat den Antrag 0412/2025 beschlossen [1].\n- erster Punkt\n- zweiter Punkt [1]"
            s.sources = [SourceRef(1, "Antrag: KI-Assistent für das Bürgerbüro prüfen", "/corpus/council/antrag.md",
                                   "council", None, "0412/2025", "d1", "d1:0", "Die Verwaltung wird beauftragt …")]
            s.status, s.model, s.prompt = "drafted", "llamacpp:test", "draft/v1"
    save(d, settings.drafts_dir)
    return d
