"""`pilot-assistant draft`: a proposal or council paper, section by section, exported to a file.

    pilot-assistant draft --template beschlussvorlage --idea "…" [--programme ID] --out x.odt [--json]
    pilot-assistant draft --template vorhabenbeschreibung --profile profil.yaml --out x.odt [--costplan plan.xlsx]
    pilot-assistant draft --resume DRAFT_ID --out x.odt        (continue after a failure)
    pilot-assistant draft --resume DRAFT_ID --save-to webdav://cloud.stadt.de/remote.php/dav/files/NAME/Entwürfe
    pilot-assistant draft --review DRAFT_ID --section ID|all --status geprueft|freigegeben --user NAME [--comment …]
    pilot-assistant draft --list-templates | --list | --import-form form.docx
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import UsageError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("draft", help="Antrag oder Beschlussvorlage entwerfen (mit Quellen, als ODT/DOCX/PDF/MD)")
    p.add_argument("--template", default="beschlussvorlage",
                   help="Vorlage: beschlussvorlage, vorhabenbeschreibung, eu-part-b, eigene oder Pfad zu .yaml")
    p.add_argument("--idea", help="Projektidee als Text oder Datei (.txt/.md; .yaml/.json mit Feldern)")
    p.add_argument("--profile", metavar="PROFILE", help="Projektsteckbrief (.yaml/.json): title, department, goal, "
                   "target_group, staff, start, duration_months, budget {total, staff, services, contracts, "
                   "investment}, programme, related_papers")
    p.add_argument("--call", metavar="AUFRUF", help="hochgeladener Förderaufruf (indexierte Datei): seine Anforderungen "
                   "kommen mit Seitenangabe in die Checkliste")
    p.add_argument("--costplan", metavar="XLSX", help="zusätzlich den AZA-Kostenplan als XLSX schreiben")
    p.add_argument("--programme", help="ID des Förderprogramms (pilot-assistant funding list)")
    p.add_argument("--out", help="Ausgabedatei: .odt, .docx, .pdf oder .md")
    p.add_argument("--save-to", dest="save_to", nargs="?", const="", metavar="WEBDAV_URL",
                   help="auch in einen openDesk/Nextcloud-Ordner speichern (ODT mit Herkunftsanhang); ohne URL der "
                        "Ordner aus webdav.save_to; ein zweites Speichern aktualisiert die Datei")
    p.add_argument("--title", help="Titel des Vorhabens (sonst aus der Idee)")
    p.add_argument("--city", help="Kommune")
    p.add_argument("--department", help="federführender Fachbereich")
    p.add_argument("--budget", help="Gesamtkosten in EUR, z. B. 250000 oder 250.000")
    p.add_argument("--duration", type=int, help="Laufzeit in Monaten")
    p.add_argument("--resume", metavar="DRAFT_ID", help="gespeicherten Entwurf fortsetzen")
    p.add_argument("--regenerate", metavar="SECTION_ID", help="mit --resume: diesen Abschnitt neu erzeugen")
    p.add_argument("--review", metavar="DRAFT_ID", help="Vier-Augen-Prüfung: Abschnitt prüfen oder freigeben")
    p.add_argument("--section", help="mit --review: Abschnitts-ID oder all (alle nicht selbst verfassten)")
    p.add_argument("--status", choices=["entwurf", "geprueft", "freigegeben"], help="mit --review: neuer Prüfstatus")
    p.add_argument("--user", help="mit --review: wer prüft (eine andere Person als der Verfasser)")
    p.add_argument("--comment", default="", help="mit --review: Kommentar")
    p.add_argument("--list-templates", action="store_true", help="Vorlagen auflisten")
    p.add_argument("--list", action="store_true", help="gespeicherte Entwürfe auflisten")
    p.add_argument("--import-form", metavar="FORM", help="Überschriften eines DOCX/ODT-Formulars als Vorlage speichern")
    add_common(p)
    p.set_defaults(run=run)


def read_profile(args):
    """--profile FILE (and/or --idea) -> Idea; --idea fills the description, flags override."""
    from ..drafting import profile

    idea = profile.load_profile(args.profile)
    if args.idea:
        extra = read_idea(args.idea, args)
        idea.description = extra.description or idea.description
        idea.title = idea.title or extra.title
    for key, flag in (("title", args.title), ("city", args.city), ("department", args.department),
                      ("duration_months", args.duration)):
        if flag is not None:
            setattr(idea, key, flag)
    if args.budget is not None:
        idea.budget = args.budget
    if args.programme:
        idea.programme_id = args.programme
    return idea


def read_idea(value: str, args):
    """--idea TEXT or FILE -> Idea; flags override what the file says."""
    from ..drafting.runner import Idea

    fields: dict = {}
    path = Path(value).expanduser() if value and len(value) < 4096 and "\n" not in value else None
    if path is not None and path.suffix.lower() in (".txt", ".md", ".yaml", ".yml", ".json") and not path.is_file():
        raise UsageError(f"Ideendatei {path} nicht gefunden", f"idea file {path} not found", "Pfad prüfen")
    if path is not None and path.is_file() and path.suffix.lower() in (".yaml", ".yml", ".json") and \
            _is_profile(path):
        from ..drafting import profile

        return profile.load_profile(path)
    if path is not None and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"Ideendatei {path} nicht lesbar: {exc}", f"idea file {path} unreadable: {exc}",
                             "UTF-8-Textdatei angeben") from None
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            fields = _structured(text, path)
        else:
            fields = _plain(text)
    else:
        fields = {"description": value or ""}
    for key, flag in (("title", args.title), ("city", args.city), ("department", args.department),
                      ("budget", args.budget), ("duration_months", args.duration)):
        if flag is not None:
            fields[key] = flag
    return Idea(title=str(fields.get("title") or ""), description=str(fields.get("description") or ""),
                city=str(fields.get("city") or ""), department=str(fields.get("department") or ""),
                budget=fields.get("budget"), duration_months=_int(fields.get("duration_months")),
                programme_id=fields.get("programme_id"))


def _is_profile(path: Path) -> bool:
    """A .yaml/.json idea file written as a profile (nested budget or profile-only keys)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and (isinstance(data.get("budget"), dict) or bool(
        {"goal", "target_group", "staff", "start", "related_papers"} & set(data)))


def _structured(text: str, path: Path) -> dict:
    import yaml

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"Ideendatei {path.name} ist fehlerhaft: {exc}", f"idea file {path.name} is malformed: {exc}",
                         "Felder: title, description, city, department, budget, duration_months") from None
    if not isinstance(data, dict):
        raise UsageError(f"Ideendatei {path.name} muss Felder enthalten (title, description, …)",
                         f"idea file {path.name} must hold fields (title, description, …)", "siehe --help")
    aliases = {"idee": "description", "idea": "description", "beschreibung": "description", "titel": "title",
               "kommune": "city", "fachbereich": "department", "laufzeit": "duration_months",
               "duration": "duration_months", "programme": "programme_id", "programm": "programme_id"}
    return {aliases.get(k, k): v for k, v in data.items()}


def _plain(text: str) -> dict:
    """'# Title' or a short first line followed by text is the title; the rest the idea."""
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    if len(lines) > 1 and (lines[0].startswith("#") or len(lines[0]) <= 100 and not lines[0].endswith(".")):
        return {"title": lines[0].lstrip("# ").strip(), "description": "\n".join(lines[1:]).strip()}
    return {"description": text.strip()}


def _int(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"Laufzeit {value!r} ist keine ganze Zahl", f"duration {value!r} is not a whole number",
                         "--duration 18") from None


def progress(event) -> None:
    if event.kind == "section_start":
        sec = event.draft.section(event.section_id)
        print(f"[{event.index}/{event.total}] {sec.heading} …", end="", file=sys.stderr, flush=True)
    elif event.kind == "section_done":
        sec = event.draft.section(event.section_id)
        flag = "" if sec.status != "failed" else f" FEHLER: {sec.error}"
        print(f" {sec.seconds:.1f} s · {sec.words} Wörter · {len(sec.cited)} Quellen{flag}", file=sys.stderr, flush=True)


def summary(d, out: Path | None, seconds: float) -> dict:
    from ..drafting.profile import profile_dict

    return {
        "draft_id": d.id, "template": d.template, "template_version": d.template_version, "prompt": d.prompt,
        "model": d.model, "programme": {"id": d.programme_id, "name": d.programme_name} if d.programme_id else None,
        "output": str(out) if out else None, "seconds": round(seconds, 1), "complete": d.complete,
        "sections": [{"id": s.id, "heading": s.heading, "level": s.level, "kind": s.kind, "status": s.status,
                      "words": s.words, "word_limit": s.word_limit, "citations": len(s.cited),
                      "sources": [{"n": r.n, "title": r.title, "source": r.source, "page": r.page,
                                   "paper_number": r.paper_number} for r in s.cited],
                      "seconds": s.seconds, "warnings": s.warnings, "error": s.error, "review": s.review,
                      "removed": s.removed} for s in d.sections],
        "computed": {"financing": d.financing, "deadline": d.deadline, "facts": d.facts},
        "requirements": [{"kind": r.kind, "text": r.text, "covered": r.covered, "sections": r.sections,
                          "status": r.status, "source": r.source, "page": r.page, "where": r.where}
                         for r in d.requirements],
        "warnings": d.warnings,
        "profile": profile_dict(d.idea), "parsed_from_idea": d.idea.parsed,
        "review": {"released": d.released, "sections": {s.id: s.review for s in d.sections}},
    }


def _text(data: dict) -> str:
    lines = [f"Entwurf {data['draft_id']} ({data['template']}) → {data['output'] or 'openDesk'}  [{data['seconds']} s]"]
    lines += [f"  {w}" for w in data["warnings"]]
    reqs = data["requirements"]
    if reqs:
        open_ = [r["text"] for r in reqs if (r.get("status") or ("met" if r["covered"] else "open")) == "open"]
        na = sum(1 for r in reqs if r.get("status") == "n/a")
        lines.append(f"Checkliste: {len(reqs) - len(open_) - na} erfüllt, {len(open_)} offen, {na} entfällt"
                     + (f"; offen: {'; '.join(open_)}" if open_ else ""))
    if not data["review"]["released"]:
        lines.append("Noch nicht alle Abschnitte freigegeben: der Export trägt den Hinweis „ENTWURF“.")
    return "\n".join(lines)


def run(args, settings) -> int:
    from ..drafting import export, form_import, runner, templates

    if args.list_templates:
        found, errors = templates.list_templates(settings)
        data = {"templates": [{"name": t.name, "title": t.title, "version": t.version, "builtin": t.builtin,
                               "sections": [s.id for s in t.sections], "description": t.description} for t in found],
                "errors": [e.de for e in errors]}
        emit(data, args.json, "\n".join([f"{t.name:<22} {t.title} (v{t.version}, {len(t.sections)} Abschnitte)"
                                         for t in found] + [f"FEHLER {e.de}" for e in errors]))
        return 0
    if args.list:
        rows = runner.list_drafts(settings)
        emit({"drafts": rows}, args.json, "\n".join(f"{r['id']:<48} {r['done']}/{r['sections']}  {r['title']}"
                                                    for r in rows) or "Keine Entwürfe.")
        return 0
    if args.import_form:
        t = form_import.import_form(args.import_form)
        path = templates.save_template(t, settings)
        emit({"template": t.name, "path": str(path), "sections": [s.heading for s in t.sections]}, args.json,
             f"Vorlage {t.name} gespeichert: {path} ({len(t.sections)} Abschnitte)\n"
             f"Verwenden: pilot-assistant draft --template {t.name} --idea … --out entwurf.odt")
        return 0
    if args.review:
        return _review(args, settings)
    if not args.out and args.save_to is None:
        raise UsageError("--out fehlt (Ausgabedatei .odt, .docx, .pdf oder .md)",
                         "--out is missing (output file .odt, .docx, .pdf or .md)", "--out entwurf.odt")
    if args.out and Path(args.out).suffix.lower() not in export.FORMATS:
        raise UsageError(f"--out muss auf {', '.join(export.FORMATS)} enden", f"--out must end in {', '.join(export.FORMATS)}",
                         "--out entwurf.odt")
    if args.regenerate and not args.resume:
        raise UsageError("--regenerate braucht --resume DRAFT_ID", "--regenerate needs --resume DRAFT_ID",
                         "pilot-assistant draft --resume ID --regenerate ziele --out x.odt")
    t0 = time.perf_counter()
    if args.resume and args.regenerate:
        d = runner.regenerate_section(args.resume, args.regenerate, settings, progress=progress)
    elif args.resume:
        d = runner.resume_draft(args.resume, settings, progress=progress)
    else:
        if args.idea is None and not args.profile:
            raise UsageError("--idea oder --profile fehlt (Text oder Datei)", "--idea or --profile is missing",
                             '--profile profil.yaml  oder  --idea "Ein KI-Assistent für das Bürgerbüro …"')
        idea = read_profile(args) if args.profile else read_idea(args.idea, args)
        d = runner.start_draft(idea, args.template, settings, programme_id=args.programme or idea.programme_id,
                               call=args.call)
        print(f"Entwurf {d.id}: {sum(1 for s in d.sections if s.status == 'pending')} Abschnitte zu schreiben",
              file=sys.stderr)
        from ..drafting.profile import confirmation
        if d.idea.parsed:
            print("Aus der Idee gelesen – bitte prüfen: " + "; ".join(confirmation(d.idea)), file=sys.stderr)
        for w in d.warnings:
            print(f"  {w}", file=sys.stderr)
        for event in runner.run_sections(d, settings):
            progress(event)
    out = export.export(d, args.out) if args.out else None
    if args.costplan:
        if Path(args.costplan).suffix.lower() != ".xlsx":
            raise UsageError("--costplan muss auf .xlsx enden", "--costplan must end in .xlsx", "--costplan plan.xlsx")
        export.export(d, args.costplan)
    saved = None
    if args.save_to is not None:
        from ..drafting.publish import save_to_folder

        saved = save_to_folder(d, settings, args.save_to or None)
    data = summary(d, out, time.perf_counter() - t0)
    if args.costplan:
        data["costplan"] = str(args.costplan)
    if saved is not None:
        data["saved"] = saved.to_dict()
    emit(data, args.json, _text(data) + (f"\n{saved.message()}" if saved else ""))
    return 0


def _review(args, settings) -> int:
    from ..drafting import runner

    if not (args.section and args.user):
        raise UsageError("--review braucht --section (ID oder all) und --user", "--review needs --section and --user",
                         "pilot-assistant draft --review ID --section all --status freigegeben --user pruefer")
    if args.section == "all":
        if args.status not in (None, "freigegeben"):
            raise UsageError("--section all gibt frei (--status freigegeben)", "--section all releases",
                             "--status freigegeben")
        d, done = runner.release_all(args.review, args.user, settings, args.comment)
    else:
        if not args.status:
            raise UsageError("--status fehlt (entwurf, geprueft, freigegeben)", "--status is missing", "--status geprueft")
        d = runner.review_section(args.review, args.section, args.status, args.user, settings, args.comment)
        done = [args.section]
    out = None
    if args.out:
        from ..drafting import export

        out = export.export(d, args.out)
    data = {"draft_id": d.id, "changed": done, "released": d.released,
            "sections": {s.id: s.review for s in d.sections}, "output": str(out) if out else None}
    emit(data, args.json, f"Entwurf {d.id}: {len(done)} Abschnitt(e) geändert; "
                          + ("alle Abschnitte freigegeben." if d.released else
                             f"noch nicht freigegeben: {', '.join(s.id for s in d.sections if s.review != 'freigegeben')}"))
    return 0
