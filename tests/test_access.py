"""Identity and access without a server: roles, collections and their groups, the search
scope of a person, sessions that expire and end with the account, the proxy headers
believed only from the proxy, the migration of an existing data dir."""
from __future__ import annotations

import sqlite3

import pytest

from assistant import auth
from assistant.access import ADMIN, EDITOR, EVERYONE, READER, Person, local_person, roles
from assistant.access import collections as colls
from assistant.access.identity import COOKIE, Identity, Request, is_loopback_host
from assistant.access.sessions import SessionStore, fingerprint
from assistant.errors import ConfigError, UsageError
from assistant.index.filters import Filters

ANNA = Person("anna", frozenset({READER}), frozenset({"bauamt"}), "proxy")
BERND = Person("bernd", frozenset({READER}), frozenset({"kaemmerei"}), "proxy")
CARLA = Person("carla", frozenset({READER, EDITOR}), frozenset({"bauamt"}), "proxy")
ADA = Person("ada", frozenset({READER, ADMIN}), frozenset(), "proxy")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_fresh_data_dir_has_default_for_everyone_and_new_collections_for_admins_only(bare_settings):
    assert [c.name for c in colls.list_collections(bare_settings)] == ["default"]
    assert colls.readable(bare_settings, ANNA) == ["default"] == colls.writable(bare_settings, ANNA)
    c, created = colls.ensure(bare_settings, "intern")
    assert created and c.read == () and c.write == ()
    assert colls.readable(bare_settings, ANNA) == ["default"]
    assert colls.readable(bare_settings, ADA) == ["default", "intern"]


def test_rights_follow_groups_and_roles(bare_settings):
    colls.create(bare_settings, "bauamt", read=["bauamt"], write=["bauamt"])
    colls.create(bare_settings, "kaemmerei", read=["kaemmerei"], write=[])
    assert colls.readable(bare_settings, ANNA) == ["bauamt", "default"]
    assert colls.readable(bare_settings, BERND) == ["default", "kaemmerei"]
    assert colls.writable(bare_settings, BERND) == ["default"]
    bau = colls.get(bare_settings, "bauamt")
    assert colls.can_write(ANNA, bau) and not colls.can_edit(ANNA, bau)   # a reader may upload, not delete
    assert colls.can_edit(CARLA, bau) and not colls.can_edit(CARLA, colls.get(bare_settings, "kaemmerei"))
    assert colls.can_edit(ADA, colls.get(bare_settings, "kaemmerei"))
    with pytest.raises(colls.Forbidden):
        colls.require_edit(bare_settings, ANNA, "bauamt")
    with pytest.raises(colls.Forbidden):
        colls.require_write(bare_settings, BERND, "kaemmerei")
    colls.grant(bare_settings, "kaemmerei", read=["bauamt"])
    assert "kaemmerei" in colls.readable(bare_settings, ANNA)
    colls.revoke(bare_settings, "kaemmerei", read=["bauamt"])
    assert "kaemmerei" not in colls.readable(bare_settings, ANNA)


def test_only_admins_change_collections(bare_settings):
    with pytest.raises(colls.Forbidden):
        colls.create(bare_settings, "x", by=CARLA)
    colls.create(bare_settings, "x", read=[EVERYONE], by=ADA)
    with pytest.raises(colls.Forbidden):
        colls.grant(bare_settings, "x", read=["a"], by=ANNA)
    with pytest.raises(UsageError, match="gibt es schon"):
        colls.create(bare_settings, "x")
    with pytest.raises(UsageError):
        colls.create(bare_settings, "../etc")
    with pytest.raises(UsageError):
        colls.create(bare_settings, "y", read=["a,b"])
    colls.delete(bare_settings, "x", by=ADA)
    assert "x" not in colls.readable(bare_settings, ADA)


def test_scope_is_the_filter_of_every_search_and_empty_means_nothing(bare_settings):
    colls.create(bare_settings, "bauamt", read=["bauamt"])
    f = colls.scope(bare_settings, ANNA, Filters(type="council"))
    assert f.type == "council" and sorted(f.collection) == ["bauamt", "default"]
    assert colls.scope(bare_settings, ANNA, Filters(collection="kaemmerei")).collection == []   # not readable
    nobody = Person("nobody", frozenset({READER}))
    colls.revoke(bare_settings, "default", read=[EVERYONE], write=[EVERYONE])
    f = colls.scope(bare_settings, nobody)
    assert f.collection == []
    cond = f.resolve()
    assert cond.impossible() and cond.chroma_where() is not None


def test_search_sees_only_the_readable_collections(settings, tmp_path):
    from assistant.index import retrieval
    from assistant.ingest.pipeline import ingest

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "bau.md").write_text("# Brücke\n\nDie Fußgängerbrücke über die Wupper kostet 2.345.678 Euro.\n")
    (tmp_path / "b" / "geld.md").write_text("# Kasse\n\nDie Fußgängerbrücke wird aus dem Kassenkredit bezahlt.\n")
    colls.create(settings, "bauamt", read=["bauamt"])
    colls.create(settings, "kaemmerei", read=["kaemmerei"])
    ingest([tmp_path / "a"], settings, collection="bauamt")
    ingest([tmp_path / "b"], settings, collection="kaemmerei")
    q = "Was kostet die Fußgängerbrücke?"
    everything = {h.chunk.collection for h in retrieval.search(q, settings)}
    assert everything == {"bauamt", "kaemmerei"}
    assert {h.chunk.collection for h in retrieval.search(q, settings, filters=colls.scope(settings, ANNA))} == {"bauamt"}
    assert {h.chunk.collection for h in retrieval.search(q, settings, filters=colls.scope(settings, BERND))} \
        == {"kaemmerei"}
    nobody = Person("nobody", frozenset({READER}), frozenset({"jugendamt"}))
    colls.revoke(settings, "default", read=[EVERYONE], write=[EVERYONE])
    assert retrieval.search(q, settings, filters=colls.scope(settings, nobody)) == []


def test_an_existing_index_keeps_its_collections_readable_by_everyone(bare_settings, tmp_path):
    """Upgrade: a data dir from before permissions loses nothing."""
    index = bare_settings.index_dir
    index.mkdir(parents=True)
    db = sqlite3.connect(index / "manifest.sqlite3")
    db.execute("CREATE TABLE documents (source TEXT PRIMARY KEY, doc_id TEXT, collection TEXT)")
    db.executemany("INSERT INTO documents VALUES(?,?,?)", [("/a", "1", "default"), ("/b", "2", "bauamt"),
                                                           ("/c", "3", "alt 2023")])
    db.commit()
    db.close()
    assert colls.readable(bare_settings, ANNA) == ["alt 2023", "bauamt", "default"]
    assert colls.writable(bare_settings, BERND) == ["alt 2023", "bauamt", "default"]


def test_roles_from_the_database_and_from_proxy_groups(bare_settings):
    assert roles.person_for(bare_settings, "anna", source="proxy").roles == {READER}
    roles.set_grants(bare_settings, "anna", roles=["editor"], groups=["bauamt"])
    p = roles.person_for(bare_settings, "anna", source="proxy", groups=["it"])
    assert p.is_editor and not p.is_admin and p.groups == {"bauamt", "it"}
    bare_settings.serve.admin_groups = "pilot-admin, it-leitung"
    assert roles.person_for(bare_settings, "bernd", source="proxy", groups=["it-leitung"]).is_admin
    with pytest.raises(colls.Forbidden):
        roles.set_grants(bare_settings, "bernd", roles=["admin"], by=CARLA)
    with pytest.raises(UsageError):
        roles.set_grants(bare_settings, "bernd", roles=["root"])
    roles.set_grants(bare_settings, "ada", roles=["admin"])
    with pytest.raises(colls.Forbidden):   # nobody locks themselves out of the admin view
        roles.set_grants(bare_settings, "ada", roles=["reader"], by=roles.person_for(bare_settings, "ada", source="x"))


def test_sessions_expire_when_idle_and_absolutely():
    clock = Clock()
    store = SessionStore(idle_s=60, max_s=300, clock=clock)
    fp = fingerprint("scrypt$x")
    token = store.create("anna", fp)
    current = {"anna": fp}.get
    clock.t += 59
    assert store.get(token, current).user == "anna"
    clock.t += 61
    assert store.get(token, current) is None               # idle too long
    token = store.create("anna", fp)
    for _ in range(6):
        clock.t += 50
        assert store.get(token, current) is not None
    clock.t += 50
    assert store.get(token, current) is None               # 350 s after login
    assert store.get("nonsense", current) is None and store.get("", current) is None


def test_a_session_ends_with_a_password_change_or_the_account(bare_settings, tmp_path):
    users = tmp_path / "users.txt"
    auth.set_password(users, "anna", "richtig-geheim")
    auth.set_password(users, "bernd", "auch-geheim-1")
    bare_settings.serve.auth_file = str(users)
    ident = Identity(bare_settings)
    assert ident.mode == "password"
    token = ident.login("anna", "richtig-geheim", "10.0.0.1")
    assert token and ident.login("anna", "falsch", "10.0.0.1") is None

    def req(t):
        return Request({}, {COOKIE: t}, "127.0.0.1")

    assert ident.resolve(req(token)).name == "anna"
    assert ident.resolve(req("erfunden")) is None
    auth.set_password(users, "anna", "neues-passwort")      # the file changes: every old session ends
    assert ident.resolve(req(token)) is None
    token = ident.login("bernd", "auch-geheim-1", "10.0.0.1")
    assert ident.resolve(req(token)).name == "bernd"
    auth.remove_user(users, "bernd")
    assert ident.resolve(req(token)) is None


def test_proxy_headers_count_only_from_the_trusted_proxy(bare_settings):
    bare_settings.serve.identity = "proxy"
    bare_settings.serve.trusted_proxies = "10.1.0.5, 10.2.0.0/24"
    bare_settings.serve.editor_groups = "redaktion"
    ident = Identity(bare_settings)
    h = {"x-forwarded-user": "anna", "x-forwarded-groups": "bauamt, redaktion"}
    p = ident.resolve(Request(h, {}, "10.1.0.5"))
    assert p.name == "anna" and p.groups == {"bauamt", "redaktion"} and p.is_editor
    assert ident.resolve(Request(h, {}, "10.2.0.77")).name == "anna"
    assert ident.resolve(Request(h, {}, "10.1.0.6")) is None          # anyone else: no identity at all
    assert ident.resolve(Request(h, {}, None)) is None
    assert ident.resolve(Request({}, {}, "10.1.0.5")) is None
    # a forged second header is joined with the real one by the web layer: the name becomes invalid
    assert ident.resolve(Request({"x-forwarded-user": "anna, admin"}, {}, "10.1.0.5")) is None
    assert ident.resolve(Request({"x-forwarded-user": "<script>"}, {}, "10.1.0.5")) is None
    # the browser's address for the login brake: the hop before the proxy, not the proxy
    assert ident.client_address(Request({"x-forwarded-for": "192.0.2.7, 10.2.0.9"}, {}, "10.1.0.5")) == "192.0.2.7"
    assert ident.client_address(Request({"x-forwarded-for": "192.0.2.7"}, {}, "198.51.100.1")) == "198.51.100.1"


def test_identity_settings_are_checked(bare_settings, tmp_path):
    assert Identity(bare_settings).mode == "none"
    assert Identity(bare_settings).resolve(Request({}, {}, None)) == local_person()
    with pytest.raises(UsageError, match="127.0.0.1"):
        Identity(bare_settings).check_bind("0.0.0.0")
    Identity(bare_settings).check_bind("127.0.0.1")
    Identity(bare_settings).check_bind("::1")
    bare_settings.serve.identity = "proxy"
    with pytest.raises(ConfigError, match="trusted-proxy"):
        Identity(bare_settings)
    bare_settings.serve.trusted_proxies = "proxy.stadt.intern"
    with pytest.raises(ConfigError, match="keine Hostnamen"):
        Identity(bare_settings)
    bare_settings.serve.trusted_proxies = "127.0.0.1"
    Identity(bare_settings).check_bind("0.0.0.0")      # proxy mode may listen on the network
    bare_settings.serve.identity = "password"
    with pytest.raises(ConfigError, match="Passwortdatei"):
        Identity(bare_settings)
    bare_settings.serve.identity = "kerberos"
    with pytest.raises(ConfigError):
        Identity(bare_settings)
    assert is_loopback_host("localhost") and is_loopback_host("[::1]") and not is_loopback_host("10.0.0.1")
