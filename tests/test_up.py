"""``depot up`` for real: an embedded Redis, web, worker, beat and Flower in a subprocess with a temp store and
free ports; health shows a live worker; SIGINT stops every child and the embedded Redis (no orphans). Also the
deployment files: compose.yaml parsed with PyYAML, the Procfile's process set."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests
import yaml

from tests.support import ROOT, VENV_BIN, base_env, free_port, wait_for


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_depot_up_runs_the_stack_and_sigint_stops_everything(tmp_path: Path):
    # Given a fresh store/var and free ports, and no external Redis
    ports = {"DEPOT_WEB_PORT": free_port(), "DEPOT_EMBEDDED_REDIS_PORT": free_port(), "DEPOT_FLOWER_PORT": free_port()}
    env = base_env({k: str(v) for k, v in ports.items()})
    env.update({"DEPOT_STORE": str(tmp_path / "models"), "DEPOT_VAR_DIR": str(tmp_path / "var"),
                "DEPOT_HOST": "uphost", "DEPOT_SOFT_SHUTDOWN_S": "2"})
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([str(VENV_BIN / "depot"), "up"], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # When it is up, Then health lists a live worker consuming every queue, including host.uphost
        url = f"http://127.0.0.1:{ports['DEPOT_WEB_PORT']}/api/v1/health"
        body = wait_for(lambda: (r := requests.get(url, timeout=2).json())["workers"] and r, timeout=60,
                        what=f"a live worker in health; log: {tmp_path / 'up.log'}")
        assert body["redis"] == "ok"
        assert {"downloads", "scan", "verify", "previews", "maintenance", "host.uphost"} <= set(body["workers"][0]["queues"])
        # And the store has the ComfyUI folder set, and Redis keeps its data under var/redis with AOF
        assert (tmp_path / "models" / "checkpoints").is_dir() and (tmp_path / "models" / "loras").is_dir()
        assert (tmp_path / "var" / "redis").is_dir()
        tree = _descendants(proc.pid)
        assert len(tree) >= 5
        # When Ctrl-C reaches depot up
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(60)
        # Then every child (web, worker, beat, Flower, the embedded Redis) is gone
        wait_for(lambda: not [p for p in tree if _alive(p)], timeout=15, what="no orphan processes")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        log.close()


def test_compose_has_the_services_and_shared_store_mount():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    # Given the compose file, Then it has redis with AOF + noeviction and every depot process
    assert {"redis", "web", "worker", "beat", "flower"} <= set(services)
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--maxmemory-policy noeviction" in redis_cmd
    # And every depot service shares one environment (x- anchor) and mounts the store at the same path
    for name in ("web", "worker", "beat", "flower"):
        svc = services[name]
        assert svc["environment"]["DEPOT_REDIS_URL"]
        store = svc["environment"]["DEPOT_STORE"]
        assert f"{store}:{store}" in svc["volumes"]
    assert "DEPOT_HOST" in services["worker"]["environment"]
    assert any(k.startswith("x-") for k in compose)


def test_procfile_runs_the_same_processes():
    lines = [ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln and not ln.startswith("#")]
    procs = dict(ln.split(":", 1) for ln in lines)
    assert set(procs) == {"web", "worker", "beat", "flower"}
    for name, cmd in procs.items():
        assert cmd.split()[-1] == name or name in cmd
    # And honcho accepts it as is, and each command parses with the depot CLI
    check = subprocess.run([str(VENV_BIN / "honcho"), "-f", str(ROOT / "Procfile"), "check"], capture_output=True,
                           text=True)
    assert check.returncode == 0 and "web, worker, beat, flower" in check.stderr + check.stdout
    from web.cli import build_parser
    for cmd in procs.values():
        args = build_parser().parse_args(cmd.split()[1:])
        assert callable(args.func)


def test_worker_nodes_split_downloads_and_name_nodes_per_host():
    from shared.config import load_settings
    from web.cli.procs import worker_nodes
    s = load_settings({}, host="gpu1", download_concurrency=3, worker_concurrency=2)
    nodes = dict(worker_nodes(s, "gpu1", None, None))
    dl, main = nodes["dl"], nodes["main"]
    assert dl[dl.index("-Q") + 1] == "downloads" and dl[dl.index("-c") + 1] == "3"
    assert dl[dl.index("-n") + 1] == "dl@gpu1" and main[main.index("-n") + 1] == "main@gpu1"
    assert "host.gpu1" in main[main.index("-Q") + 1].split(",") and "-E" in main
    only = worker_nodes(s, "gpu1", ["previews", "host.gpu1"], 1)
    assert len(only) == 1 and only[0][1][only[0][1].index("-Q") + 1] == "previews,host.gpu1"
