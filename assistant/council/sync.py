"""OParl sync: a council information system's papers and their files -> the index.

System -> Body -> paper list (paged via ``links.next``) -> Paper with its Consultations
(-> Meeting, AgendaItem) and Files. A File's ``text`` is used when the server has it;
otherwise the file is downloaded (conditional GET) and parsed by the normal, sandboxed
ingest. Metadata reaches the chunks through a ``.meta.yaml`` sidecar next to each file.

Meetings come in a second pass over the body's meeting list (``meetings.py``): their
invitations, protocols and resolution files are ingested like paper files, with meeting
date, organisation and agenda items in their sidecars. Every object met on the way (paper,
consultation, meeting, agenda item, organisation, person, file) goes into the procedure
model (``procedures.py``) after its page is ingested, so ``council trace`` sees it.

Incremental and resumable: ``state.json`` keeps, per body, the ``modified_since`` of the
last complete run and the cursor (next page URL) of the current one, written after every
page, so a killed sync continues where it stopped (the meeting pass has its own under
``meetings``). Tombstones (``deleted: true``) remove their files and chunks, and their
objects from the model. Requests go only to the host of the configured URL.

Layout under ``<data_dir>/oparl/``::

    state.json                       per body: modified_since, current run's cursor, papers to retry
    <host>/files/<key>-<name>.<ext>  downloaded file (or File.text as .txt) + .meta.yaml sidecar
    <host>/.records/papers/<key>.json  modified, files          (what a tombstone must remove)
    <host>/.records/meetings/<key>.json  modified, files        (the same for a meeting)
    <host>/.records/files/<key>.json   path, ETag, Last-Modified, owning papers or meetings
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager
from urllib.parse import urljoin

import yaml

from ..config import Settings
from ..errors import UsageError, UserError
from ..fsutil import exclusive
from .client import CHANGED, NOT_MODIFIED, FetchError, OParlClient, read_json, write_if_different, write_json
from .mapping import (
    Obj,
    Registry,
    SyncReport,
    consultation_view,
    file_meta,
    http_date_iso,
    ids,
    key,
    kind,
    local_name,
    now_iso,
    paper_file_ids,
    paper_meta,
    parse_since,
    register,
    with_query,
)
from .meetings import MeetingPass
from .procedures import Model

STATE_VERSION = 1
Progress = Callable[[dict], None]


def sync(url: str, settings: Settings, *, body: str | None = None, since: str | None = None,
         collection: str = "default", progress: Progress | None = None, timeout: float = 30.0,
         retries: int = 4, backoff: float = 0.5) -> SyncReport:
    """Bring the index up to date with the OParl system whose System object is at ``url``.

    ``since`` (ISO date or date-time) overrides the stored ``modified_since`` for this run;
    ``body`` limits the run to one body (its id URL, last path segment or short name)."""
    from ..index.store import Store

    if since is not None:
        try:
            since = parse_since(since)
        except ValueError:
            raise UsageError(f"Ungültiges Datum für --since: {since}", f"Invalid --since date: {since}",
                             "--since 2024-01-31 oder --since 2024-01-31T12:00:00+01:00") from None
    started = time.perf_counter()
    report = SyncReport()
    client = OParlClient(url, report, timeout=timeout, retries=retries, backoff=backoff)
    root = Path(settings.data_dir).resolve() / "oparl"
    root.mkdir(parents=True, exist_ok=True)
    try:
        with _lock(root / "sync.lock"), Store(settings) as store, Model(settings) as model:
            _Syncer(settings, client, store, report, root, collection,
                    progress or (lambda e: None), model).run(url, body, since)
    finally:
        client.close()
        report.seconds = time.perf_counter() - started
    return report


def load_state(path: Path) -> dict:
    state = read_json(path)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        state = {"version": STATE_VERSION, "bodies": {}}
    return state


def _lock(path: Path) -> ContextManager[None]:
    return exclusive(path, UsageError("Ein anderer OParl-Abgleich läuft bereits für dieses Datenverzeichnis",
                                      "Another OParl sync is running on this data dir",
                                      "Warten, bis er fertig ist (ein abgebrochener setzt beim nächsten Start fort)"))


def _unreachable(what: str, exc: Exception) -> UserError:
    de, en = what.split(" / ")
    return UserError(f"OParl-Server: {de} nicht abrufbar ({exc}). Der nächste Abgleich setzt hier fort.",
                     f"OParl server: cannot fetch the {en} ({exc}). The next sync resumes here.",
                     "URL und Erreichbarkeit des Servers prüfen, dann erneut `pilot-assistant oparl sync`")


@dataclass
class _Paper:
    """A paper (or a meeting) whose files wait for the ingest of its page."""

    id: str
    modified: str
    status: str                      # new | updated
    files: list[str]
    failed: list[str] = field(default_factory=list)


@dataclass
class _Page:
    papers: list[_Paper] = field(default_factory=list)
    ingest: dict[str, list[tuple[_Paper, str]]] = field(default_factory=dict)   # path -> (paper, file id)
    reindex: set[str] = field(default_factory=set)                  # sidecar changed, bytes did not
    objects: list[Obj] = field(default_factory=list)                # for the procedure model
    sources: dict[str, str] = field(default_factory=dict)           # file id -> local path
    drop: list[str] = field(default_factory=list)                   # ids gone from the server


class _Syncer(MeetingPass):
    def __init__(self, settings: Settings, client: OParlClient, store, report: SyncReport, root: Path,
                 collection: str, progress: Progress, model: Model) -> None:
        self.settings, self.client, self.store, self.report = settings, client, store, report
        self.model = model
        self.collection, self.progress = collection, progress
        self.state_file = root / "state.json"
        self.state = load_state(self.state_file)
        self.base = root / client.netloc.replace(":", "_")
        self.files_dir = self.base / "files"
        self.records = self.base / ".records"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.registry: Registry = {}       # every object seen this run, embedded or fetched, by id
        self.fresh: dict[str, bool] = {}   # kinds the model lacks for the current body: list them in full
        self.unavailable: set[str] = set()  # ids that could not be fetched this run
        self.max_bytes = settings.ingest.max_file_mb * 2**20

    # --- bodies and pages ------------------------------------------------------------------
    def run(self, url: str, body_filter: str | None, since: str | None) -> None:
        try:
            system, _ = self.client.get_json(url)
        except FetchError as exc:
            raise _unreachable("System-Objekt / System object", exc) from None
        bodies = self._bodies(system)
        if body_filter:
            chosen = [b for b in bodies if body_filter in (b["id"], b["id"].rstrip("/").rsplit("/", 1)[-1],
                                                           b.get("shortName"), b.get("name"))]
            if not chosen:
                names = ", ".join(f"{b.get('shortName') or b.get('name')} ({b['id']})" for b in bodies)
                raise UsageError(f"Körperschaft {body_filter!r} nicht gefunden; vorhanden: {names}",
                                 f"Body {body_filter!r} not found; available: {names}", "--body ID")
            bodies = chosen
        for body in bodies:
            self.report.bodies.append(str(body.get("name") or body["id"]))
            # without the body's objects in the procedure model (a new model, an older data dir)
            # the first run lists everything once; unchanged files cost a conditional GET
            self.fresh = {k: not self.model.knows(k, body["id"]) for k in ("Paper", "Meeting")}
            with self.model.transaction():
                self.model.put(body, body["id"])
            self._body(body, since)
            self._meetings(body, self.state["bodies"][body["id"]], since)
        self.store.lexical()   # tombstone-only runs changed chunks without an ingest
        self.model.refresh(self.store)

    def _bodies(self, system: Obj) -> list[Obj]:
        listed = system.get("body")
        out: list[Obj] = []
        try:
            if isinstance(listed, str):
                for items, _, _ in self.client.iter_list(listed):
                    out += [self._object(i) if isinstance(i, str) else i for i in items]
            else:
                out = [self._object(i) if isinstance(i, str) else i for i in ids(listed)]
        except FetchError as exc:
            raise _unreachable("Liste der Körperschaften / body list", exc) from None
        return [b for b in out if b and not b.get("deleted")]

    def _body(self, body: Obj, since: str | None) -> None:
        bid = body["id"]
        entry = self.state["bodies"].setdefault(bid, {})
        run = entry.get("run")
        if run and (since is None or run.get("since") == since):
            self.report.resumed = True
            next_url, started, since = run["next"], run.get("started"), run.get("since")
        else:
            stored = None if self.fresh.get("Paper") else entry.get("modified_since")
            since = since if since is not None else stored
            if not body.get("paper"):
                return
            next_url = with_query(body["paper"], modified_since=since) if since else body["paper"]
            started = None
            self._retry_papers(body, entry)
        while next_url:
            try:
                page, date = self.client.get_json(next_url)
            except FetchError as exc:
                raise _unreachable("Drucksachen-Liste / paper list", exc) from None
            if started is None:   # the server's clock at the first page: changes after it come next time
                started = http_date_iso(date) or now_iso()
                entry["run"] = {"started": started, "since": since, "next": next_url}
                self._save()
            self.report.pages += 1
            nxt = (page.get("links") or {}).get("next")
            nxt = urljoin(next_url, nxt) if nxt else None
            self._page(list(page.get("data") or []), body, entry)
            self.progress({"event": "page", "body": bid, "pages": self.report.pages,
                           "papers": dict(self.report.papers)})
            next_url = nxt if nxt and nxt != next_url else None
            entry["run"] = {"started": started, "since": since, "next": next_url}
            self._save()
        entry.pop("run", None)
        entry["modified_since"] = started
        self._save()

    def _retry_papers(self, body: Obj, entry: dict) -> None:
        """Papers whose files failed last time: their ``modified`` may not change again."""
        pending = list(entry.get("retry") or [])
        if not pending:
            return
        papers = []
        for pid in pending:
            obj = self._object(pid, refresh=True)
            if obj is not None:
                papers.append(obj)
        entry["retry"] = [p for p in pending if p in self.unavailable]
        self._page(papers, body, entry)

    def _save(self) -> None:
        write_json(self.state_file, self.state)

    # --- one page of papers ----------------------------------------------------------------
    def _page(self, items: list, body: Obj, entry: dict) -> None:
        pids: list[str] = []
        for item in items:
            pid = register(item, self.registry) if isinstance(item, dict) and item.get("id") else item
            if isinstance(pid, str) and pid not in pids:
                pids.append(pid)
        page = _Page()
        for pid in pids:
            paper = self.registry.get(pid) or self._object(pid)
            if paper is None:
                self.report.papers["failed"] += 1
                self.report.errors.append(f"{pid}: nicht abrufbar / unavailable")
                continue
            self._paper(paper, body, page)
        self._ingest(page)
        retry = set(entry.get("retry") or [])
        for p in page.papers:
            write_json(self._paper_record(p.id), {"id": p.id, "modified": "" if p.failed else p.modified,
                                                  "files": p.files, "failed": p.failed})
            self.report.papers[p.status] += 1
            (retry.add if p.failed else retry.discard)(p.id)
        entry["retry"] = sorted(retry)
        self._record(page, body)
        # papers and files (with their full text) are done; meetings and the like are kept for later pages
        for oid in [oid for oid, obj in self.registry.items() if kind(obj) in ("Paper", "File")]:
            del self.registry[oid]

    def _paper(self, paper: Obj, body: Obj, page: _Page) -> None:
        pid = paper["id"]
        record = read_json(self._paper_record(pid))
        if paper.get("deleted"):
            if record:
                self._drop_paper(pid, record)
                self.report.papers["deleted"] += 1
            page.drop.append(pid)
            return
        modified = str(paper.get("modified") or "")
        if record and modified and record.get("modified") == modified and not record.get("failed") \
                and not self.fresh.get("Paper") and self.model.get(pid) is not None:
            self.report.papers["unchanged"] += 1
            return
        consultations = [c for c in (self._object(cid) for cid in ids(paper.get("consultation"))) if c]
        for cons in consultations:   # the meeting first: it embeds its agenda items
            for ref in ids(cons.get("meeting")) + ids(cons.get("agendaItem")):
                self._object(ref)
        self._collect(page, [paper, *consultations], ("meeting", "agendaItem", "organization",
                                                      "originatorOrganization", "originatorPerson",
                                                      "underDirectionOf"))
        listed = {c["id"] for c in consultations}
        page.drop += [c["id"] for c in self.model.children("Consultation", pid) if c["id"] not in listed]
        meta = paper_meta(paper, body, [consultation_view(c, self.registry) for c in consultations])
        work = _Paper(pid, modified, "updated" if record else "new", paper_file_ids(paper))
        main = next(iter(ids(paper.get("mainFile"))), None)
        for fid in list(work.files):
            file = self._object(fid)
            if file is None:
                self._fail(work, fid, "Datei-Objekt nicht abrufbar / file object unavailable")
            elif file.get("deleted"):
                work.files.remove(fid)   # released below like a file the paper no longer lists
            else:
                self._file(file, file_meta(meta, file, main=fid == main), work, page)
        for gone in set((record or {}).get("files") or []) - set(work.files):
            self._release(gone, pid)
        page.papers.append(work)

    def _file(self, file: Obj, meta: dict, work: _Paper, page: _Page) -> None:
        fid = file["id"]
        rec_path = self._file_record(fid)
        rec = read_json(rec_path) or {"id": fid, "owners": []}
        owners = list(rec.get("owners") or [])
        page.objects.append(file)
        if owners and owners[0] != work.id and rec.get("path") and Path(rec["path"]).exists():
            page.sources[fid] = str(Path(rec["path"]).resolve())
            # a file several papers list is indexed once, with the metadata of the first of them
            if work.id not in owners:
                write_json(rec_path, {**rec, "owners": owners + [work.id]})
            return
        text = file.get("text") if isinstance(file.get("text"), str) and file["text"].strip() else None
        name = local_name(file, text=text is not None)
        if name is None:
            self.report.files["skipped"] += 1   # e.g. an image or a spreadsheet: nothing the loaders read
            return
        path = self.files_dir / name
        if rec.get("path") and rec["path"] != str(path):
            self._forget_path(Path(rec["path"]))   # e.g. the server now sends `text`
            rec.pop("etag", None), rec.pop("last_modified", None)
        if text is not None:
            changed = write_if_different(path, text.encode("utf-8"))
        else:
            url = file.get("downloadUrl") or file.get("accessUrl")
            if not url:
                return self._fail(work, fid, "weder accessUrl noch text / neither accessUrl nor text")
            have = path.exists()
            try:
                got = self.client.download(str(url), path, max_bytes=self.max_bytes,
                                           etag=rec.get("etag", "") if have else "",
                                           last_modified=rec.get("last_modified", "") if have else "")
            except FetchError as exc:
                return self._fail(work, fid, str(exc))
            if got.status == NOT_MODIFIED:
                self.report.files["not_modified"] += 1
            changed = got.status == CHANGED
            rec["etag"], rec["last_modified"] = got.etag, got.last_modified
        sidecar = path.with_name(path.name + ".meta.yaml")
        meta_changed = write_if_different(sidecar, yaml.safe_dump(meta, allow_unicode=True, sort_keys=True)
                                          .encode("utf-8"))
        rec["path"] = str(path)
        rec["owners"] = owners if work.id in owners else [work.id, *owners]
        write_json(rec_path, rec)
        page.sources[fid] = str(path.resolve())
        from ..index.store import INDEXED

        source = str(path.resolve())
        indexed = self.store.document(source)
        if indexed is not None and indexed.status == INDEXED and not changed and not meta_changed:
            self.report.files["unchanged"] += 1
            return
        if indexed is not None and indexed.status == INDEXED and not changed:
            page.reindex.add(source)   # same bytes, new metadata: the ingest alone would skip it
        page.ingest.setdefault(source, []).append((work, fid))

    def _fail(self, work: _Paper, fid: str, reason: str) -> None:
        work.failed.append(fid)
        self.report.files["failed"] += 1
        self.report.errors.append(f"{fid}: {reason}")

    def _ingest(self, page: _Page) -> None:
        from ..ingest.pipeline import ingest

        if not page.ingest:
            return
        for source in page.reindex:
            self.store.remove_source(source)
        result = ingest(list(page.ingest), self.settings, collection=self.collection, type="council",
                        store=self.store)
        for fr in result.files:
            if fr.status in ("ingested", "replaced"):
                self.report.files["ingested"] += 1
            elif fr.status in ("unchanged", "duplicate"):
                self.report.files["unchanged"] += 1
            elif fr.status == "failed":
                for work, fid in page.ingest.get(fr.source, []):
                    self._fail(work, fid, fr.reason)

    # --- objects, records, deletion --------------------------------------------------------
    def _collect(self, page: _Page, objs: list[Obj], attrs: tuple[str, ...]) -> None:
        """``objs`` and what they reference under ``attrs`` (fetched unless already known) go
        into the procedure model with the page."""
        for obj in objs:
            page.objects.append(obj)
            for attr in attrs:
                for oid in ids(obj.get(attr)):
                    other = self._ensure(oid)
                    if other is not None:
                        page.objects.append(other)
                        if kind(other) == "Meeting":   # who met: the step's organisation
                            page.objects += [o for o in map(self._ensure, ids(other.get("organization"))) if o]

    def _ensure(self, oid: str) -> Obj | None:
        """An object this run has seen, else the model's copy (organisations and persons rarely
        change; a sync need not fetch them again), else fetched."""
        if oid in self.registry:
            return self.registry[oid]
        known = self.model.get(oid)
        return known if known is not None else self._object(oid)

    def _record(self, page: _Page, body: Obj) -> None:
        """The page's objects into the procedure model, in one transaction."""
        with self.model.transaction():
            for obj in page.objects:
                if obj.get("deleted"):
                    self.model.delete(obj["id"])
                else:
                    self.model.put(obj, body["id"])
            for fid, source in page.sources.items():
                self.model.annotate(fid, _source=source)
            for oid in page.drop:
                self.model.delete(oid)

    def _object(self, oid: str, *, refresh: bool = False) -> Obj | None:
        """An object by id: from what this run has seen, else fetched (once) from the server."""
        if not refresh and oid in self.registry:
            return self.registry[oid]
        if oid in self.unavailable or not self.client.allowed(oid):
            return None
        try:
            obj, _ = self.client.get_json(oid)
        except FetchError as exc:
            self.unavailable.add(oid)
            self.report.errors.append(f"{oid}: {exc}")
            return None
        if not obj.get("id"):
            obj["id"] = oid
        if refresh:
            self.registry.pop(oid, None)
        return self.registry[register(obj, self.registry)]

    def _paper_record(self, pid: str) -> Path:
        return self.records / "papers" / f"{key(pid)}.json"

    def _file_record(self, fid: str) -> Path:
        return self.records / "files" / f"{key(fid)}.json"

    def _drop_paper(self, pid: str, record: dict) -> None:
        for fid in record.get("files") or []:
            self._release(fid, pid)
        self._paper_record(pid).unlink(missing_ok=True)

    def _release(self, fid: str, pid: str) -> None:
        """``pid`` no longer lists file ``fid``; the file goes when no paper lists it."""
        rec_path = self._file_record(fid)
        rec = read_json(rec_path)
        if not rec:
            return
        owners = [o for o in rec.get("owners") or [] if o != pid]
        if owners:
            write_json(rec_path, {**rec, "owners": owners})
            return
        if rec.get("path"):
            self._forget_path(Path(rec["path"]))
        rec_path.unlink(missing_ok=True)

    def _forget_path(self, path: Path) -> None:
        if self.store.remove_source(str(path.resolve())):
            self.report.files["removed"] += 1
        for p in (path, path.with_name(path.name + ".meta.yaml")):
            p.unlink(missing_ok=True)
