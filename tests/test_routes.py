"""The route table in ``web/api/__init__.py`` is the API the app serves: every route it lists is served by the
module of that area, and the app serves no API route it does not list. Each area's module is named for its URL
area (a listing that belongs to the store, ``/folders`` and ``/duplicates``, is the models area's; ``/resolve``
the downloads area's)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from web.api import ROUTES

#: Routes whose first path segment is not their module's name.
ELSEWHERE = {"folders": "models", "duplicates": "models", "facets": "models", "resolve": "downloads"}


def _served(app: Any) -> dict[str, set[str]]:
    """area -> "METHOD /path" of every API rule the app serves (converters left out)."""
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        area, _dot, _name = rule.endpoint.partition(".")
        if not rule.rule.startswith("/api/v1/") or not _dot:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"<\1>", rule.rule[len("/api/v1"):])
        out.setdefault(area, set()).update(f"{m} {path}" for m in rule.methods - {"HEAD", "OPTIONS"})
    return out


def test_the_route_table_lists_exactly_the_routes_the_app_serves(app: Any) -> None:
    served = _served(app)
    # The WebSocket is served by web/ws.py beside the table (flask-sock registers its own rule).
    assert served.pop("ws", None) == {"GET /ws"}
    assert {area: set(routes) for area, routes in ROUTES.items()} == served


def test_each_area_is_a_module_named_for_its_url() -> None:
    api = Path(__file__).resolve().parent.parent / "web" / "api"
    for area, routes in ROUTES.items():
        assert (api / f"{area}.py").is_file(), area
        for route in routes:
            first = route.split(" ", 1)[1].split("/")[1]
            assert ELSEWHERE.get(first, first) == area, route
