"""``depot up`` for real: an embedded Redis, web, worker, beat and Flower in a subprocess with a temp store and
free ports; health shows a live worker; SIGINT stops every child and the embedded Redis (no orphans). Also the
deployment files: compose.yaml parsed with PyYAML, the Procfile's process set."""
from __future__ import annotations

import subprocess
from pathlib import Path

import requests
import yaml

from tests.no_500 import watch_server_log
from tests.proc_tree import descendants, interrupt_tree, kill_tree
from tests.support import ROOT, VENV_BIN, base_env, free_port, wait_for


def test_depot_up_runs_the_stack_and_sigint_stops_everything(tmp_path: Path):
    # Given free ports, no external Redis, and relative paths: DEPOT_VAR_DIR against the folder `depot up` is
    # started in, the store in a depot.yaml named by a relative DEPOT_CONFIG (relative to the file); the children
    # run in the project's folder, so they only agree with the parent if it hands them the resolved paths
    ports = {"DEPOT_WEB_PORT": free_port(), "DEPOT_EMBEDDED_REDIS_PORT": free_port(), "DEPOT_FLOWER_PORT": free_port()}
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "depot.yaml").write_text("store: ../models\n")
    env = base_env({k: str(v) for k, v in ports.items()})
    env.update({"DEPOT_CONFIG": "conf/depot.yaml", "DEPOT_VAR_DIR": "var", "DEPOT_HOST": "uphost",
                "DEPOT_SOFT_SHUTDOWN_S": "2"})
    log = open(tmp_path / "up.log", "wb")
    watch_server_log(tmp_path / "up.log")  # a 500 from its web process fails this test
    proc = subprocess.Popen([str(VENV_BIN / "depot"), "up"], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    tree: set[int] = set()
    try:
        # When it is up, Then health lists a live worker consuming every queue, including host.uphost
        api = f"http://127.0.0.1:{ports['DEPOT_WEB_PORT']}/api/v1"
        body = wait_for(lambda: len((r := requests.get(f"{api}/health", timeout=2).json())["workers"]) == 2 and r,
                        timeout=60, what=f"two live worker nodes in health; log: {tmp_path / 'up.log'}")
        assert body["redis"] == "ok"
        queues = {w["name"].split("@")[0]: set(w["queues"]) for w in body["workers"]}
        assert {"downloads", "scan", "verify", "previews", "maintenance", "host.uphost"} <= queues["all"]
        assert queues["wf"] == {"workflows"}  # workflow tasks wait on a thread pool of their own
        # And the store has the ComfyUI folder set, and Redis keeps its data under var/redis with AOF
        assert (tmp_path / "models" / "checkpoints").is_dir() and (tmp_path / "models" / "loras").is_dir()
        assert (tmp_path / "var" / "redis").is_dir()
        # And web, beat and the worker use the same store and state as the parent resolved
        folders = {f["name"]: f["paths"] for f in requests.get(f"{api}/folders", timeout=10).json()}
        assert folders["loras"] == [str(tmp_path / "models" / "loras")]
        wait_for(lambda: list((tmp_path / "var").glob("celerybeat-schedule*")), timeout=30, what="beat's schedule")
        (tmp_path / "models" / "loras" / "one.safetensors").write_bytes(b"\0" * 64)
        task = requests.post(f"{api}/scans", json={"mode": "quick"}, timeout=10).json()
        done = wait_for(lambda: (t := requests.get(f"{api}/tasks/{task['id']}", timeout=5).json())["state"]
                        in ("succeeded", "failed") and t, timeout=60, what="the scan")
        assert done["state"] == "succeeded" and done["result"]["files"] == 1, done
        tree = descendants(proc.pid)
        assert len(tree) >= 5
        # When Ctrl-C reaches depot up, Then every child (web, worker, beat, Flower, the embedded Redis) is gone
        assert interrupt_tree(proc, timeout=60) == []
        # And a normal stop reads clean: one line says so, then one line per process
        said = (tmp_path / "up.log").read_text().splitlines()
        start = next(i for i, line in enumerate(said) if "SIGINT received" in line)
        after = [line.split("| ", 1)[-1] for line in said[start:]]
        assert after[0] == "SIGINT received: stopping every process", after
        assert sorted(after[1:]) == [f"{name} stopped (rc=0)" for name in
                                     ("beat", "flower", "web", "worker", "workflows")], after
    finally:
        kill_tree(proc, tree)
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
    from cli import build_parser
    for cmd in procs.values():
        args = build_parser().parse_args(cmd.split()[1:])
        assert callable(args.func)


def test_worker_nodes_split_downloads_and_name_nodes_per_host():
    from cli.procs import worker_nodes
    from shared.config import load_settings
    s = load_settings({}, host="gpu1", download_concurrency=3, worker_concurrency=2)
    nodes = dict(worker_nodes(s, "gpu1", None, None))
    dl, main = nodes["dl"], nodes["main"]
    assert dl[dl.index("-Q") + 1] == "downloads" and dl[dl.index("-c") + 1] == "3"
    assert dl[dl.index("-n") + 1] == "dl@gpu1" and main[main.index("-n") + 1] == "main@gpu1"
    assert "host.gpu1" in main[main.index("-Q") + 1].split(",") and "-E" in main
    only = worker_nodes(s, "gpu1", ["previews", "host.gpu1"], 1)
    assert len(only) == 1 and only[0][1][only[0][1].index("-Q") + 1] == "previews,host.gpu1"
    wf = nodes["wf"]
    assert wf[wf.index("-Q") + 1] == "workflows" and wf[wf.index("-P") + 1] == "threads"
