"""Fixtures: a real redis-server per session (flushed per test), settings, the Flask app and client,
worker subprocesses. A missing redis-server fails the run; it is never skipped."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from werkzeug.serving import make_server

from shared.config import Settings, load_settings
from tests.support import RedisServer, WorkerProcess, base_env

pytest_plugins = ("tests.leakcheck", "tests.no_500", "tests.run_limits", "tests.fake_upstream_fixture")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def settings_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    """The environment a worker subprocess and the app share for one test."""
    store = tmp_path / "models"
    store.mkdir()
    return {
        "DEPOT_REDIS_URL": redis_server.url,
        "DEPOT_STORE": str(store),
        "DEPOT_VAR_DIR": str(tmp_path / "var"),
        "DEPOT_HOST": "testhost",
        "DEPOT_ALLOW_PRIVATE_URLS": "1",
        "DEPOT_LEASE_S": "4",
        "DEPOT_PROGRESS_INTERVAL_S": "0.2",
        "DEPOT_TASK_MODULES": "tests.jobs_for_tests",
        "DEPOT_CIVITAI_URL": "http://127.0.0.1:9",
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }


@pytest.fixture
def settings(settings_env: dict[str, str], redis: redis_lib.Redis) -> Settings:
    (Path(settings_env["DEPOT_VAR_DIR"])).mkdir(parents=True, exist_ok=True)
    return load_settings(settings_env)


@pytest.fixture
def app(settings: Settings) -> Any:
    from web import create_app
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def workers(settings_env: dict[str, str], tmp_path: Path, redis: redis_lib.Redis) -> Iterator[Any]:
    """Factory: ``workers(host="a", queues=[...])`` starts a worker subprocess; all are killed at the end."""
    started: list[WorkerProcess] = []

    def start(host: str = "testhost", queues: list[str] | None = None, env: dict[str, str] | None = None,
              **kw: Any) -> WorkerProcess:
        from workers.queues import default_queues
        w = WorkerProcess(base_env({**settings_env, **(env or {})}), host=host,
                          queues=queues or default_queues(host),
                          log_path=tmp_path / f"worker-{host}-{len(started)}.log",
                          **kw)
        started.append(w)
        return w.start(redis)

    yield start
    for w in started:
        w.kill()


@pytest.fixture
def served(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app over real HTTP on a free port; the CLI's DEPOT_URL points at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("DEPOT_URL", url)
    monkeypatch.delenv("DEPOT_API_TOKEN", raising=False)
    yield url
    server.shutdown()
    relay = app.extensions["depot"].relay
    if relay is not None:  # a WebSocket was opened: end its sessions and the subscriber thread
        relay.stop()
    server.server_close()
