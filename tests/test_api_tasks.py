"""REST for tasks: listing, control actions with 409s, auth, and JSON errors for every bad input."""
from __future__ import annotations

import pytest

from shared.config import load_settings


def _task(app, kind="scan", params=None):
    return app.extensions["depot"].services.records.create(kind, params or {}, queue="scan")[0]


def test_list_and_get(client, app):
    ids = [_task(app)["id"] for _ in range(3)]
    body = client.get("/api/v1/tasks?limit=2").json
    assert [t["id"] for t in body["items"]] == ids[::-1][:2] and body["next_cursor"]
    rest = client.get(f"/api/v1/tasks?limit=2&cursor={body['next_cursor']}").json
    assert [t["id"] for t in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    task = client.get(f"/api/v1/tasks/{ids[0]}").json
    assert set(task) >= {"id", "kind", "state", "progress", "attempt", "host", "params", "result", "error",
                         "created_at", "started_at", "updated_at", "finished_at", "seq"}
    assert client.get("/api/v1/tasks?state=queued").json["items"]
    assert client.get("/api/v1/tasks?state=running").json["items"] == []


@pytest.mark.parametrize("query,code", [("state=bogus", "invalid_request"), ("limit=abc", "invalid_request"),
                                        ("limit=0", "invalid_request"), ("limit=100000", "invalid_request"),
                                        ("cursor=../../etc", "invalid_request"), ("kind=%27%3B--", "invalid_request")])
def test_bad_list_queries_are_400_json(client, query, code):
    resp = client.get(f"/api/v1/tasks?{query}")
    assert resp.status_code in (400, 404)
    assert resp.json["error"]["code"] == code and resp.json["error"]["message"]


def test_control_actions_and_409(client, app):
    task = _task(app)
    assert client.post(f"/api/v1/tasks/{task['id']}/resume").status_code == 409
    resp = client.post(f"/api/v1/tasks/{task['id']}/retry")
    assert resp.status_code == 409 and resp.json["error"]["code"] == "illegal_transition"
    assert "queued" in resp.json["error"]["message"]
    assert client.post(f"/api/v1/tasks/{task['id']}/pause").json["state"] == "paused"
    assert client.post(f"/api/v1/tasks/{task['id']}/resume").json["state"] == "queued"
    assert client.delete(f"/api/v1/tasks/{task['id']}").status_code == 409
    assert client.post(f"/api/v1/tasks/{task['id']}/cancel").json["state"] == "cancelled"
    assert client.post(f"/api/v1/tasks/{task['id']}/cancel").status_code == 409
    assert client.post(f"/api/v1/tasks/{task['id']}/retry").json["state"] == "queued"
    assert client.post(f"/api/v1/tasks/{task['id']}/cancel").status_code == 200
    assert client.delete(f"/api/v1/tasks/{task['id']}").status_code == 204
    assert client.get(f"/api/v1/tasks/{task['id']}").status_code == 404


def test_unknown_things_are_json_errors(client):
    for method, path in [("get", "/api/v1/tasks/ffff"), ("get", "/api/v1/nothing"),
                         ("post", "/api/v1/tasks/zz/pause"), ("put", "/api/v1/tasks")]:
        resp = getattr(client, method)(path)
        assert resp.status_code in (404, 405)
        assert resp.json["error"]["code"] in ("not_found", "method_not_allowed")


def test_token_required_for_writes_when_set(settings, redis):
    from web import create_app
    app = create_app(settings.replace(api_token="s3cret"))
    c = app.test_client()
    task = app.extensions["depot"].services.records.create("scan", {}, queue="scan")[0]
    assert c.get("/api/v1/tasks").status_code == 200  # reads are open
    resp = c.post(f"/api/v1/tasks/{task['id']}/pause")
    assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized"
    assert c.post(f"/api/v1/tasks/{task['id']}/pause", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.post(f"/api/v1/tasks/{task['id']}/pause", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    strict = create_app(settings.replace(api_token="s3cret", read_token_required=True)).test_client()
    assert strict.get("/api/v1/tasks").status_code == 401
    assert strict.get("/api/v1/tasks?token=s3cret").status_code == 200
    assert strict.get("/api/v1/health").status_code in (200, 503)


def test_body_too_large_is_413_json(settings, redis):
    from web import create_app
    c = create_app(settings.replace(max_body_bytes=1024)).test_client()
    resp = c.post("/api/v1/tasks/abc/pause", data=b"x" * 5000, content_type="application/json")
    assert resp.status_code == 413 and resp.json["error"]["code"] == "body_too_large"


def test_redis_down_is_503_not_500(settings, redis_server):
    from tests.support import free_port
    from web import create_app
    c = create_app(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")).test_client()
    resp = c.get("/api/v1/tasks")
    assert resp.status_code == 503 and resp.json["error"]["code"] == "redis_unavailable"
    assert c.get("/api/v1/health").json["redis"] == "unavailable"


def test_health_is_degraded_with_a_reason_while_no_worker_is_alive(client):
    resp = client.get("/api/v1/health")
    body = resp.json
    assert resp.status_code == 200 and body["redis"] == "ok" and body["workers"] == []
    assert body["status"] == "degraded" and "depot worker" in body["reason"]


def test_vocabulary_is_served(client):
    body = client.get("/api/v1/vocabulary").json
    assert body["states"] == ["queued", "running", "paused", "succeeded", "failed", "cancelled", "lost"]


def test_settings_validation_names_each_bad_variable():
    from shared.config import SettingsError
    with pytest.raises(SettingsError) as err:
        load_settings({"DEPOT_WEB_PORT": "nope", "DEPOT_ALLOW_PRIVATE_URLS": "maybe"})
    assert "DEPOT_WEB_PORT" in str(err.value) and "DEPOT_ALLOW_PRIVATE_URLS" in str(err.value)
    with pytest.raises(SettingsError, match="VISIBILITY"):
        load_settings({"DEPOT_VISIBILITY_TIMEOUT_S": "60"})
    with pytest.raises(SettingsError) as err:
        load_settings({"DEPOT_SCAN_PROCESSES": "-1", "DEPOT_THUMBS_MAX_BYTES": "-5"})
    assert "DEPOT_SCAN_PROCESSES" in str(err.value) and "DEPOT_THUMBS_MAX_BYTES" in str(err.value)


def test_settings_from_yaml_then_env(tmp_path):
    cfg = tmp_path / "depot.yaml"
    cfg.write_text("host: yamlhost\nweb_port: 9000\nallow_private_urls: true\n")
    s = load_settings({"DEPOT_CONFIG": str(cfg), "DEPOT_WEB_PORT": "9100"})
    assert (s.host, s.web_port, s.allow_private_urls) == ("yamlhost", 9100, True)


def test_celery_config_agrees_on_visibility_timeout():
    from workers.celery_app import celery_config
    s = load_settings({})
    conf = celery_config(s)
    vt = s.visibility_timeout_s
    assert conf["visibility_timeout"] == vt
    assert conf["broker_transport_options"]["visibility_timeout"] == vt
    assert conf["result_backend_transport_options"]["visibility_timeout"] == vt
    assert all(a["time_limit"] < vt for a in conf["task_annotations"].values())
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"] and conf["worker_prefetch_multiplier"] == 1


def test_public_settings_never_show_secrets(settings, redis):
    from web import create_app
    c = create_app(settings.replace(api_token="s3cret-token", nsfw_level=4)).test_client()
    body = c.get("/api/v1/settings").json
    assert body["nsfw_level"] == 4 and body["token_required"] is True and body["flower_port"] == 5555
    assert "s3cret-token" not in c.get("/api/v1/settings").get_data(as_text=True)


def test_nsfw_level_is_a_store_wide_preference(settings, redis):
    from shared.services import Services
    from web import create_app
    # Given a server whose setting is R (4) and which requires a token for writes
    c = create_app(settings.replace(api_token="tok", nsfw_level=4)).test_client()
    auth = {"Authorization": "Bearer tok"}
    assert c.get("/api/v1/settings").json["nsfw_level"] == 4
    # When it is changed without the token, or to values that are not Civitai ratings, nothing changes
    assert c.put("/api/v1/settings/nsfw_level", json={"value": 8}).status_code == 401
    for bad in ({"value": 3}, {"value": "8"}, {"value": True}, {"value": [8]}, {}, {"level": 8}):
        r = c.put("/api/v1/settings/nsfw_level", json=bad, headers=auth)
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_request", (bad, r.json)
    assert c.get("/api/v1/settings").json["nsfw_level"] == 4
    # When it is set to X (8)
    r = c.put("/api/v1/settings/nsfw_level", json={"value": 8}, headers=auth)
    # Then this server and every other process sharing the Redis see it, with the setting kept as the default
    assert r.status_code == 200 and (r.json["nsfw_level"], r.json["nsfw_level_default"]) == (8, 4)
    assert Services.build(settings).nsfw_level() == 8
    assert [lv["value"] for lv in c.get("/api/v1/settings").json["nsfw_levels"]] == [1, 2, 4, 8, 16]
    # And null goes back to the server's setting
    assert c.put("/api/v1/settings/nsfw_level", json={"value": None}, headers=auth).json["nsfw_level"] == 4
