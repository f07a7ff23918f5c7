"""ComfyUI's official workflow templates (the ``comfyui-workflow-templates-json`` package): every one parses,
every ``models`` entry ComfyUI wrote in them is found as a reference in its folder, every folder they name is a
folder the store knows, and every model-file widget of their loaders lands in a folder."""
from __future__ import annotations

import json

import pytest

from shared.store.layout import StoreLayout
from shared.workflows.check import wanted_in
from shared.workflows.formats import read_bytes
from tests.workflow_support import template_paths

TEMPLATES = template_paths()


def _declared(graph: dict) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """Every ``properties.models`` entry of the graph and its subgraph definitions, with the node type."""
    out = []
    nodes = list(graph["nodes"])
    for sg in (graph.get("definitions") or {}).get("subgraphs") or []:
        nodes += sg.get("nodes") or []
    for n in nodes:
        out += [(n["type"], m) for m in (n.get("properties") or {}).get("models") or []]
    return out + [("(graph)", m) for m in graph.get("models") or []]


def test_the_package_ships_hundreds_of_templates():
    assert len(TEMPLATES) > 600
    assert sum(len(_declared(json.loads(p.read_bytes()))) for p in TEMPLATES) > 1000


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_parses_and_every_declared_model_is_a_reference(path, tmp_path_factory):
    data = path.read_bytes()
    wanted = wanted_in(read_bytes(data))
    found = {(w.folder, w.relpath): w for w in wanted}
    urls: dict[tuple[str, str], set[str]] = {}
    for _t, entry in _declared(json.loads(data)):
        urls.setdefault((entry["directory"], entry["name"]), set()).add(entry["url"])
    for node_type, entry in _declared(json.loads(data)):
        w = found.get((entry["directory"], entry["name"]))
        assert w is not None, f"{node_type}: {entry['directory']}/{entry['name']} not found"
        assert w.url in urls[(entry["directory"], entry["name"])]  # the first of the URLs it is declared with
        if entry.get("hash"):
            assert (entry["hash_type"], entry["hash"].upper()) in w.hashes
    assert all(w.folder is not None for w in wanted), [w.name for w in wanted if w.folder is None]


def test_every_folder_the_templates_name_is_a_store_folder(tmp_path):
    known = set(StoreLayout(tmp_path).names())
    named = {m["directory"] for p in TEMPLATES for _t, m in _declared(json.loads(p.read_bytes()))}
    assert named and named <= known, sorted(named - known)
