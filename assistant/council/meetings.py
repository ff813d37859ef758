"""The meeting pass of the OParl sync: the body's meeting list (paged, ``modified_since``),
each meeting with its agenda items and organisations into the procedure model, its files
(invitation, results and verbatim protocol, attachments, resolution files) into the index.

A mixin of the syncer in ``sync.py``: it reuses the syncer's file download, ingest, records
and model writes. Its cursor lives under ``meetings`` in the body's state, so a killed run
resumes here too. A meeting list the server does not offer (or fails on) costs the run
nothing but an error line: the papers are already synced.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

from .client import FetchError, read_json, write_json
from .mapping import (
    Obj,
    http_date_iso,
    ids,
    key,
    kind,
    meeting_file_ids,
    meeting_file_meta,
    now_iso,
    register,
    with_query,
)


class MeetingPass:
    """Methods of the syncer for meetings (see the module docstring)."""

    def _meeting_record(self, mid: str) -> Path:
        return self.records / "meetings" / f"{key(mid)}.json"

    def _meetings(self, body: Obj, entry: dict, since: str | None) -> None:
        url = body.get("meeting")
        if not isinstance(url, str) or not url:
            return
        state = entry.setdefault("meetings", {})
        run = state.get("run")
        if run and (since is None or run.get("since") == since):
            next_url, started, since = run["next"], run.get("started"), run.get("since")
        else:
            stored = None if self.fresh.get("Meeting") else state.get("modified_since")
            since = since if since is not None else stored
            next_url = with_query(url, modified_since=since) if since else url
            started = None
            self._retry_meetings(body, state)
        while next_url:
            try:
                page, date = self.client.get_json(next_url)
            except FetchError as exc:
                self.report.errors.append(f"Sitzungsliste / meeting list: {exc}")
                return   # the cursor stays: the next sync resumes the meetings here
            if started is None:
                started = http_date_iso(date) or now_iso()
                state["run"] = {"started": started, "since": since, "next": next_url}
                self._save()
            self.report.meeting_pages += 1
            nxt = (page.get("links") or {}).get("next")
            nxt = urljoin(next_url, nxt) if nxt else None
            self._meeting_page(list(page.get("data") or []), body, state)
            next_url = nxt if nxt and nxt != next_url else None
            state["run"] = {"started": started, "since": since, "next": next_url}
            self._save()
        state.pop("run", None)
        state["modified_since"] = started
        self._save()

    def _retry_meetings(self, body: Obj, state: dict) -> None:
        pending = list(state.get("retry") or [])
        if pending:
            meetings = [m for m in (self._object(mid, refresh=True) for mid in pending) if m is not None]
            state["retry"] = [m for m in pending if m in self.unavailable]
            self._meeting_page(meetings, body, state)

    def _meeting_page(self, items: list, body: Obj, state: dict) -> None:
        from .sync import _Page

        mids: list[str] = []
        for item in items:
            mid = register(item, self.registry) if isinstance(item, dict) and item.get("id") else item
            if isinstance(mid, str) and mid not in mids:
                mids.append(mid)
        page = _Page()
        for mid in mids:
            meeting = self.registry.get(mid) or self._object(mid)
            if meeting is None:
                self.report.meetings["failed"] += 1
                self.report.errors.append(f"{mid}: nicht abrufbar / unavailable")
                continue
            self._meeting(meeting, body, page)
        self._ingest(page)
        retry = set(state.get("retry") or [])
        for m in page.papers:
            write_json(self._meeting_record(m.id), {"id": m.id, "modified": "" if m.failed else m.modified,
                                                    "files": m.files, "failed": m.failed})
            self.report.meetings[m.status] += 1
            (retry.add if m.failed else retry.discard)(m.id)
        state["retry"] = sorted(retry)
        self._record(page, body)
        for oid in [oid for oid, obj in self.registry.items() if kind(obj) == "File"]:
            del self.registry[oid]

    def _meeting(self, meeting: Obj, body: Obj, page) -> None:
        from .sync import _Paper

        mid = meeting["id"]
        record = read_json(self._meeting_record(mid))
        if meeting.get("deleted"):
            if record:
                for fid in record.get("files") or []:
                    self._release(fid, mid)
                self._meeting_record(mid).unlink(missing_ok=True)
                self.report.meetings["deleted"] += 1
            page.drop.append(mid)
            return
        modified = str(meeting.get("modified") or "")
        if record and modified and record.get("modified") == modified and not record.get("failed") \
                and not self.fresh.get("Meeting") and self.model.get(mid) is not None:
            self.report.meetings["unchanged"] += 1
            return
        items = [i for i in (self._object(iid) for iid in ids(meeting.get("agendaItem"))) if i]
        live = [i for i in items if not i.get("deleted")]
        listed = {i["id"] for i in live}
        page.drop += [i["id"] for i in items if i.get("deleted")]
        page.drop += [i["id"] for i in self.model.children("AgendaItem", mid) if i["id"] not in listed]
        orgs = [o for o in (self._ensure(oid) for oid in ids(meeting.get("organization"))) if o]
        page.objects += [meeting, *live, *orgs]
        names = [str(o.get("name") or o.get("shortName") or "") for o in orgs]
        files = meeting_file_ids(meeting, live)
        work = _Paper(mid, modified, "updated" if record else "new", [fid for fid, _, _ in files])
        for fid, role, item in files:
            file = self._object(fid)
            if file is None:
                self._fail(work, fid, "Datei-Objekt nicht abrufbar / file object unavailable")
            elif file.get("deleted"):
                work.files.remove(fid)
            else:
                meta = meeting_file_meta(meeting, body, names, [item] if item else live, file, role)
                self._file(file, meta, work, page)
        for gone in set((record or {}).get("files") or []) - set(work.files):
            self._release(gone, mid)
        page.papers.append(work)
