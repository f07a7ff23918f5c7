"""Process commands: ``depot up``, ``depot web``, ``depot worker``, ``depot beat``, ``depot flower``.

``depot up`` runs the whole stack in the foreground: an embedded Redis (AOF, ``noeviction``) unless
``DEPOT_REDIS_URL`` points elsewhere, then web, one worker on every queue, beat and Flower supervised by honcho's
``Manager``. Ctrl-C stops every child, then the embedded Redis (last, so workers can hand their tasks back).
Every command line is built here, so the Procfile, compose.yaml and ``depot up`` start the same processes.

Children run in the project's folder (so ``python -m`` imports this project, never a same-named package in the
user's folder) and get every path setting as an absolute environment value, resolved by the parent against the
folder it was started in: wherever ``depot up`` starts, every process uses the same store and state."""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from shared.config import Settings, load_settings, path_environment
from workers import queues

CELERY = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]
ROOT = Path(__file__).resolve().parents[2]


# --- command lines ----------------------------------------------------------------------------------------------

def web_cmd(s: Settings) -> list[str]:
    # gthread: every open WebSocket holds a thread, so give each process plenty of them; web/gunicorn_conf.py
    # raises the request-line limit and makes gunicorn's own refusals JSON like every other API error
    return [sys.executable, "-m", "gunicorn", "-c", "python:web.gunicorn_conf", "-k", "gthread", "-w", "2",
            "--threads", "64", "-b", f"{s.web_bind}:{s.web_port}", "--graceful-timeout", "10",
            "--access-logfile", "-",
            # gunicorn's control socket defaults to one per user ($HOME/.gunicorn): one per instance instead
            "--control-socket", str(s.var_dir / "gunicorn.ctl"),
            "web:create_app()"]


def worker_cmd(s: Settings, host: str, queue_names: list[str], concurrency: int, role: str,
               pool: str = "prefork") -> list[str]:
    return [*CELERY, "worker", "-P", pool, "-c", str(concurrency), "-n", f"{role}@{host}",
            "-Q", ",".join(queue_names), "-E", "-l", "INFO"]


#: Workflow tasks only wait on their downloads (a Redis read twice a second): threads, not processes.
WORKFLOW_THREADS = 8


def workflow_cmd(s: Settings, host: str) -> list[str]:
    return worker_cmd(s, host, [queues.WORKFLOWS], WORKFLOW_THREADS, "wf", pool="threads")


def worker_nodes(s: Settings, host: str, queue_names: list[str] | None,
                 concurrency: int | None) -> list[tuple[str, list[str]]]:
    """(name, command) per node. Without explicit queues: downloads get their own node (bandwidth-bound,
    ``download_concurrency``), everything else shares a second one; node names are ``<role>@<host>``."""
    if queue_names:
        return [("worker", worker_cmd(s, host, queue_names, concurrency or s.worker_concurrency, "worker"))]
    rest = [q for q in queues.default_queues(host) if q != queues.DOWNLOADS]
    return [("dl", worker_cmd(s, host, [queues.DOWNLOADS], concurrency or s.download_concurrency, "dl")),
            ("main", worker_cmd(s, host, rest, concurrency or s.worker_concurrency, "main")),
            ("wf", workflow_cmd(s, host))]


def beat_cmd(s: Settings) -> list[str]:
    return [*CELERY, "beat", "-s", str(s.var_dir / "celerybeat-schedule"), "-l", "INFO"]


def flower_cmd(s: Settings) -> list[str]:
    # Without auth Flower listens on loopback only; with auth it binds where the web server binds.
    address = s.web_bind if s.effective_flower_auth else "127.0.0.1"
    # --db: where Flower keeps its state if FLOWER_PERSISTENT is turned on (otherwise ./flower)
    return [*CELERY, "flower", f"--port={s.flower_port}", f"--address={address}", "--purge_offline_workers=120",
            f"--db={s.var_dir / 'flower'}"]


def flower_env(s: Settings) -> dict[str, str]:
    """Basic auth goes through the environment so the password never shows in ``ps``."""
    auth = s.effective_flower_auth
    if auth:
        return {"FLOWER_BASIC_AUTH": auth}
    return {"FLOWER_UNAUTHENTICATED_API": "true"}


# --- embedded Redis --------------------------------------------------------------------------------------------

class EmbeddedRedis:
    """A private redis-server with AOF and ``noeviction``, data under ``var/redis``."""

    def __init__(self, s: Settings) -> None:
        self.port = s.embedded_redis_port
        self.dir = s.var_dir / "redis"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            raise SystemExit("depot: redis-server is not installed; run `make up` (it installs it) or "
                             "`apt-get install redis-server`, or set DEPOT_REDIS_URL to an existing Redis")
        if self._ping():
            raise SystemExit(f"depot: something already answers on 127.0.0.1:{self.port} (another `depot up`?); "
                             "stop it or set DEPOT_EMBEDDED_REDIS_PORT")
        self.dir.mkdir(parents=True, exist_ok=True)
        # own session: a terminal Ctrl-C reaches us, and we stop Redis after everyone else
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes",
             "--maxmemory-policy", "noeviction", "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"depot: embedded redis-server did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes the AOF and exits
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- supervision ------------------------------------------------------------------------------------------------

def _child_env(s: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(path_environment(s))
    env["DEPOT_REDIS_URL"] = s.effective_redis_url
    env["DEPOT_HOST"] = s.host
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


#: What a child still says once a Ctrl-C has begun the shutdown: problems, and the tasks handed back.
_STILL_SAID = re.compile(r"ERROR|CRITICAL|Traceback|event=handoff")


def _shutdown_printer() -> Any:
    """honcho's printer, made quiet for a normal stop: once SIGINT or SIGTERM is received, one line says so and
    each process then gets its one "stopped" line; the children's own goodbyes (gunicorn's per-worker lines,
    Celery's "Warm shutdown", Flower's "shutting down") and honcho's "sending SIGTERM" per child are left out,
    unless a line reports a problem or a task handed back. A process that dies on its own is not a normal stop:
    everything is printed then."""
    from honcho.printer import Message, Printer

    class ShutdownPrinter(Printer):  # type: ignore[misc]
        stopping = False

        def write(self, message: Message) -> None:
            text = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
            if message.name == "system":
                if text.endswith(" received\n"):
                    self.stopping = True
                    message = message._replace(data=text.rstrip("\n") + ": stopping every process\n")
                elif self.stopping and text.startswith("sending SIGTERM"):
                    return
            elif self.stopping and not _STILL_SAID.search(text):
                return
            super().write(message)

    return ShutdownPrinter(sys.stdout)


def supervise(s: Settings, procs: list[tuple[str, list[str], dict[str, str]]]) -> int:
    """Run the processes under honcho until one exits or we get SIGINT/SIGTERM; then stop all of them."""
    import honcho.manager
    # honcho SIGKILLs children KILL_WAIT seconds after SIGTERM: leave workers their soft-shutdown grace
    honcho.manager.KILL_WAIT = s.soft_shutdown_s + 5
    manager = honcho.manager.Manager(printer=_shutdown_printer())
    for name, cmd, extra in procs:
        manager.add_process(name, "exec " + shlex.join(cmd), env=_child_env(s, extra), cwd=str(ROOT))
    manager.loop()
    return int(manager.returncode or 0)


def ensure_store(s: Settings) -> None:
    """Create the store and its ComfyUI folder set (first start)."""
    s.store.mkdir(parents=True, exist_ok=True)
    s.var_dir.mkdir(parents=True, exist_ok=True)
    from shared.store.comfyui_config import ensure_folders
    ensure_folders(s)


def up(args: argparse.Namespace) -> int:
    s = load_settings()
    ensure_store(s)
    embedded: EmbeddedRedis | None = None
    if not s.redis_url:
        embedded = EmbeddedRedis(s)
        embedded.start()
        s = s.replace(redis_url=f"redis://127.0.0.1:{s.embedded_redis_port}/0")
    if not s.api_token:
        print("depot: WARNING DEPOT_API_TOKEN is not set: anyone who can reach the web port can start downloads "
              "and delete models", file=sys.stderr)
    procs = [("web", web_cmd(s), {}),
             ("worker", worker_cmd(s, s.host, queues.default_queues(s.host), s.worker_concurrency, "all"), {}),
             ("workflows", workflow_cmd(s, s.host), {}),
             ("beat", beat_cmd(s), {}),
             ("flower", flower_cmd(s), flower_env(s))]
    print(f"depot: web http://{s.web_bind}:{s.web_port}  flower http://127.0.0.1:{s.flower_port}  "
          f"redis {s.redis_target.redacted()}", file=sys.stderr, flush=True)
    try:
        return supervise(s, procs)
    finally:
        if embedded:
            embedded.stop()


def _exec(s: Settings, cmd: list[str], extra: dict[str, str] | None = None) -> int:
    """Replace this process with the command, so signals reach it directly; in the project's folder, like the
    children of ``depot up`` (the paths it needs come absolute in the environment)."""
    env = _child_env(s, extra)
    os.chdir(ROOT)
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


def web(args: argparse.Namespace) -> int:
    s = load_settings()
    return _exec(s, web_cmd(s))


def worker(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.host:
        env["DEPOT_HOST"] = args.host
    s = load_settings(env)
    queue_names = [q for part in (args.queues or []) for q in part.split(",") if q]
    nodes = worker_nodes(s, s.host, queue_names or None, args.concurrency)
    if len(nodes) == 1:
        return _exec(s, nodes[0][1])
    return supervise(s, [(name, cmd, {}) for name, cmd in nodes])


def beat(args: argparse.Namespace) -> int:
    s = load_settings()
    s.var_dir.mkdir(parents=True, exist_ok=True)
    return _exec(s, beat_cmd(s))


def flower(args: argparse.Namespace) -> int:
    s = load_settings()
    return _exec(s, flower_cmd(s), flower_env(s))


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run the whole stack in the foreground (embedded Redis unless DEPOT_REDIS_URL)")
    p.set_defaults(func=up)
    p = sub.add_parser("web", help="run the web server (gunicorn, threaded for WebSockets)")
    p.set_defaults(func=web)
    p = sub.add_parser("worker", help="run this host's worker(s)")
    p.add_argument("--host", help="this host's name (sets DEPOT_HOST; queue host.<NAME>)")
    p.add_argument("--queues", nargs="+", metavar="QUEUE",
                   help="queues to consume (space or comma separated); default: a downloads node and a node "
                        "for every other queue including host.<NAME>")
    p.add_argument("--concurrency", type=int, help="processes per node")
    p.set_defaults(func=worker)
    p = sub.add_parser("beat", help="run the scheduler (reaper, hygiene, periodic scans)")
    p.set_defaults(func=beat)
    p = sub.add_parser("flower", help="run Flower with the same Celery config (basic auth from settings)")
    p.set_defaults(func=flower)
