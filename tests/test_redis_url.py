"""``DEPOT_REDIS_URL`` in its Sentinel form: parsed once, refused with a clear message (that never echoes the
password) when malformed, turned into kombu's broker URL and transport options for Celery, the result backend and
Flower, and ``depot up`` starts no embedded Redis for it."""
from __future__ import annotations

import argparse
from typing import Any

import pytest

from shared.config import SettingsError, load_settings
from shared.redis_url import parse_redis_url
from workers.celery_app import make_celery


def test_the_contract_form_with_credentials_and_sentinel_password() -> None:
    t = parse_redis_url("sentinel://app:p%40ss@h1:26379,h2:26380,[::1]/depot-main/3?sentinel_password=s3")
    assert t.is_sentinel
    assert t.sentinels == (("h1", 26379), ("h2", 26380), ("::1", 26379))
    assert (t.master_name, t.db) == ("depot-main", 3)
    assert t.master_auth() == {"username": "app", "password": "p@ss"}
    assert t.sentinel_auth() == {"password": "s3"}
    assert "p@ss" not in t.redacted() and "s3" not in t.redacted() and t.redacted().startswith("sentinel://app:****@")


def test_db_defaults_to_zero_and_a_password_alone_works() -> None:
    t = parse_redis_url("sentinel://:secret@10.0.0.1:26379/mymaster")
    assert (t.db, t.username, t.password, t.sentinel_auth()) == (0, None, "secret", {})


def test_a_plain_url_is_left_to_redis_py() -> None:
    t = parse_redis_url("redis://:pw@head:6379/2")
    assert not t.is_sentinel and t.url == "redis://:pw@head:6379/2"
    assert t.redacted() == "redis://:****@head:6379/2"


@pytest.mark.parametrize("url, says", [
    ("sentinel:///depot/0", "at least one sentinel"),
    ("sentinel://h1:26379", "master name"),
    ("sentinel://h1:26379/", "master name"),
    ("sentinel://h1:26379/depot/x", "database number"),
    ("sentinel://h1:26379/depot/0/extra", "database number"),
    ("sentinel://h1:notaport/depot/0", "is not a port"),
    ("sentinel://h1:26379/depot/0?password=x", "unknown parameter"),
    ("http://h1/depot", "sentinel://"),
])
def test_malformed_urls_are_refused_with_the_form(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_redis_url(url)


def test_settings_refuse_a_bad_url_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"DEPOT_REDIS_URL": "sentinel://:hunter2@h1:26379"})
    assert "DEPOT_REDIS_URL" in str(err.value) and "master name" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_celery_gets_kombus_sentinel_form_for_broker_and_results() -> None:
    s = load_settings({"DEPOT_REDIS_URL": "sentinel://:pw@h1:26379,h2:26380/depot/2?sentinel_password=sp"})
    app = make_celery(s)
    assert app.conf.broker_url == "sentinel://:pw@h1:26379/2;sentinel://:pw@h2:26380/2"
    for options in (app.conf.broker_transport_options, app.conf.result_backend_transport_options):
        assert options["master_name"] == "depot"
        assert options["sentinel_kwargs"]["password"] == "sp"
    # kombu reads every sentinel, the master's password and the db from that URL
    conn = app.connection_for_write()
    assert conn.transport_cls == "sentinel" and len(conn.alt) == 2
    assert (conn.password, conn.virtual_host) == ("pw", "2")
    backend = app.backend
    assert type(backend).__name__ == "SentinelBackend"
    assert [(h["host"], h["port"]) for h in backend.connparams["hosts"]] == [("h1", 26379), ("h2", 26380)]
    assert (backend.connparams["password"], backend.connparams["db"]) == ("pw", 2)


def test_a_plain_url_keeps_the_plain_broker() -> None:
    app = make_celery(load_settings({"DEPOT_REDIS_URL": "redis://127.0.0.1:6390/1"}))
    assert app.conf.broker_url == "redis://127.0.0.1:6390/1"
    assert "master_name" not in app.conf.broker_transport_options


def test_depot_up_with_a_sentinel_url_starts_no_embedded_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cli import procs
    url = "sentinel://:pw@h1:26379,h2:26379,h3:26379/depot/0"
    for name, value in {"DEPOT_REDIS_URL": url, "DEPOT_STORE": str(tmp_path / "models"),
                        "DEPOT_VAR_DIR": str(tmp_path / "var")}.items():
        monkeypatch.setenv(name, value)

    def no_embedded(self: Any, *a: Any, **kw: Any) -> None:
        raise AssertionError("an embedded Redis was started")

    started: dict[str, Any] = {}

    def supervise(s: Any, children: list[Any]) -> int:
        started["env"] = procs._child_env(s)
        started["names"] = [name for name, _cmd, _env in children]
        return 0

    monkeypatch.setattr(procs.EmbeddedRedis, "start", no_embedded)
    monkeypatch.setattr(procs, "supervise", supervise)
    assert procs.up(argparse.Namespace()) == 0
    assert started["env"]["DEPOT_REDIS_URL"] == url
    assert started["names"] == ["web", "worker", "workflows", "beat", "flower"]
    banner = capsys.readouterr().err
    assert "sentinel://:****@h1:26379" in banner and ":pw@" not in banner
