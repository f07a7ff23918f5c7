"""``python -m bench._scale_probe ENV_JSON ROUNDS``: one web process's view of a big index (for ``bench scale``):
its RSS after serving every sort order and a first search (which builds the word index), then p50/p99 (ms) of
the first page, a deep page, searches and the first page after a logged and after an unlogged change. Prints one
JSON line."""
from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _ms(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    env, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
    from shared.config import load_settings
    from shared.store.index import SORTS, StoreIndex
    from web import create_app
    settings = load_settings(env)
    client = create_app(settings).test_client()

    def get(url: str) -> Any:
        resp = client.get(url)
        assert resp.status_code == 200, resp.data[:200]
        return resp.get_json()

    t0 = time.perf_counter()
    total = get("/api/v1/models?limit=1")["total"]
    for sort in SORTS:
        get(f"/api/v1/models?sort={sort}&limit=100")
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    get("/api/v1/models?q=portrait&limit=100")  # the first search builds the word index
    out: dict[str, Any] = {"warm_s": warm, "index_s": time.perf_counter() - t0, "rss_mib": _rss_mib()}
    out["first page"] = _ms(lambda: get("/api/v1/models?sort=name&limit=100"), rounds)
    out["deep page"] = _ms(lambda: get(f"/api/v1/models?sort=name&limit=100&offset={total // 2}"), rounds)
    out["search 1 term"] = _ms(lambda: get("/api/v1/models?q=watercolor&limit=100"), max(5, rounds // 5))
    out["search 3 terms"] = _ms(lambda: get("/api/v1/models?q=neon%20glow%20v3&limit=100"), max(5, rounds // 5))
    out["base model chip"] = _ms(lambda: get("/api/v1/models?base_model=Pony&limit=100"), max(5, rounds // 5))
    out["duplicates filter"] = _ms(lambda: get("/api/v1/models?duplicates=true&limit=100"), max(5, rounds // 5))
    writer = StoreIndex(client.application.extensions["depot"].services.redis, settings)
    doc = next(writer.models())
    changes, searches = [], []
    for i in range(max(5, rounds // 5)):
        doc["title"] = f"Renamed {i}"
        writer.put_docs([doc])
        changes.append(_ms(lambda: get("/api/v1/models?sort=name&limit=100"), 1)[0])
        doc["title"] = f"Watercolor {i}"
        writer.put_docs([doc])
        searches.append(_ms(lambda: get("/api/v1/models?q=watercolor&limit=100"), 1)[0])
    out["after one change"] = (statistics.median(changes), max(changes))
    out["search after one change"] = (statistics.median(searches), max(searches))
    redis = client.application.extensions["depot"].services.redis
    rereads = []
    for _ in range(3):
        redis.incr("depot:store:gen")  # a change the log cannot account for: every row is read again
        rereads.append(_ms(lambda: get("/api/v1/models?sort=name&limit=100"), 1)[0])
    out["after an unlogged change"] = (statistics.median(rereads), max(rereads))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
