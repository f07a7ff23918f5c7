"""Every API route, fed junk path parts, junk query strings and junk bodies, answers with a JSON 4xx (never a
500, never a stack trace) and leaves nothing behind in the store."""
from __future__ import annotations

import re

import pytest

JUNK_SEGMENTS = ["..", "%2e%2e", "a%00b", "x" * 600, "%5c..%5cwin", "-1", "null"]
JUNK_BODIES = [b"{", b"[]", b'"str"', b"123", b'{"url": 5}', b'{"folder": {"a": 1}}', b'{"models": "x"}',
               b'{"models": [1, 2]}', b'{"move_to": "x"}', b'{"value": []}', b'{"mode": "bogus"}',
               b'{"url": "file:///etc/passwd"}', b'{"url": "http://169.254.169.254/latest"}',
               b'{"folder": "../../etc", "url": "http://example.invalid/a.safetensors"}',
               "{\"filename\": \"\u0000.safetensors\", \"url\": \"http://example.invalid/x\"}".encode()]
JUNK_QUERIES = ["limit=-5", "limit=abc", "offset=1e9", "size=0", "size=99999", "sort=nope", "order=sideways",
                "since=-1", "url=", "url=javascript:alert(1)", "q=%00", "host=..%2F", "state=lost%00"]


def _concrete(rule: str, segment: str) -> str:
    return re.sub(r"<[^>]+>", segment, rule)


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") and rule.rule != "/api/v1/ws":
            yield rule


def _assert_clean(resp, what: str) -> None:
    assert resp.status_code < 500 or resp.status_code == 503, f"{what}: {resp.status_code} {resp.data[:300]!r}"
    if resp.status_code >= 400:
        body = resp.get_json(silent=True)
        assert body and set(body["error"]) >= {"code", "message"}, f"{what}: {resp.data[:300]!r}"
        assert "Traceback" not in resp.get_data(as_text=True)


def test_junk_everywhere_is_a_json_4xx(client, app, settings):
    before = sorted(p.relative_to(settings.store) for p in settings.store.rglob("*") if p.is_file())
    checked = 0
    for rule in _api_rules(app):
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        for segment in JUNK_SEGMENTS:
            path = _concrete(rule.rule, segment)
            for method in methods:
                if method == "GET":
                    for query in JUNK_QUERIES:
                        _assert_clean(client.get(f"{path}?{query}"), f"GET {path}?{query}")
                        checked += 1
                else:
                    for body in JUNK_BODIES:
                        resp = client.open(path, method=method, data=body, content_type="application/json")
                        _assert_clean(resp, f"{method} {path} {body[:40]!r}")
                        checked += 1
    assert checked > 500
    after = sorted(p.relative_to(settings.store) for p in settings.store.rglob("*") if p.is_file())
    assert after == before


@pytest.mark.parametrize("body", JUNK_BODIES)
def test_junk_submissions_create_no_task(client, app, body):
    records = app.extensions["depot"].services.records
    for path in ("/api/v1/downloads", "/api/v1/scans", "/api/v1/verifications", "/api/v1/previews/regenerate"):
        resp = client.post(path, data=body, content_type="application/json")
        _assert_clean(resp, f"POST {path}")
        if resp.status_code < 300:  # a valid default (e.g. scan everything) may be accepted; junk never is
            assert path != "/api/v1/downloads", resp.get_json()
    downloads, _ = records.page(kind="download")
    assert downloads == []
