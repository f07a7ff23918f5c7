"""The models a ComfyUI graph names, in both shapes ComfyUI writes.

UI format: ``nodes`` with ``type``, ``mode``, ``widgets_values`` (a list in widget order, or an object) and
``properties.models``; graph-level ``models``; subgraph definitions under ``definitions.subgraphs`` (nested ones
too), whose instances are nodes typed with the subgraph's id; legacy group nodes under ``extra.groupNodes``
(instances typed ``workflow>NAME``). A node muted (mode 2) or bypassed (mode 4), or inside a subgraph or group
no active instance uses, only makes its models ``optional``. Widget index ↔ input name comes from the node's
``inputs`` entries with a ``widget`` when they cover every value, else from the loader table. A node's
``properties.models`` entries count when one of its widgets selects them (ComfyUI's own rule: the list goes stale
when the user picks another file); ``properties["Scene Config"]`` of 3D nodes is never read.

API format: ``{"<id>": {"class_type", "inputs"}}``; linked inputs (``[node_id, slot]``) are skipped."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from shared.store.extra_paths import map_legacy
from shared.workflows.errors import MalformedWorkflow
from shared.workflows.loaders import DIRECTORY_FOLDERS, Loader, is_model_file, loader
from shared.workflows.prompts import prompt_references
from shared.workflows.refs import HASH_LENGTHS, Wanted

#: LiteGraph modes: 2 = never (muted), 4 = bypass.
INACTIVE_MODES = (2, 4)
MAX_NODES = 100_000
_MAX_VALUE_DEPTH = 6
_HEX = frozenset("0123456789abcdefABCDEF")


def ui_references(graph: dict[str, Any]) -> list[Wanted]:
    """Every model the UI graph names, in graph order (not yet merged)."""
    out: list[Wanted] = []
    for entry in _list(graph.get("models")):
        w = model_entry(entry, None, optional=False)
        if w is not None:
            out.append(w)
    for node, active, values in _ui_nodes(graph):
        out.extend(node_references(_str(node.get("type")), _ui_widgets(node, values), active,
                                   _list(_dict(node.get("properties")).get("models"))))
    return out


def api_references(prompt: dict[str, Any]) -> list[Wanted]:
    """Every model an API prompt names (every node of a prompt runs)."""
    if len(prompt) > MAX_NODES:
        raise MalformedWorkflow(f"The prompt has more than {MAX_NODES} nodes.")
    out: list[Wanted] = []
    for node in prompt.values():
        inputs = _dict(node.get("inputs"))
        widgets: list[tuple[str | None, Any]] = [(name, v) for name, v in inputs.items() if not _is_link(v)]
        out.extend(node_references(node.get("class_type"), widgets, True, []))
    return out


def node_references(node_type: str | None, widgets: list[tuple[str | None, Any]], active: bool,
                    models: list[Any]) -> list[Wanted]:
    """The models one node names: its widget values (by the loader table, else by extension, plus prompt text)
    and the ``properties.models`` entries its widgets select, which bring URL, folder and hash."""
    spec = loader(node_type)
    found: list[Wanted] = []
    for name, value in widgets:
        _value_refs(spec, node_type, name, value, not active, found, 0)
    if not models:
        return found
    selected = {v for _, v in widgets if isinstance(v, str) and v.strip()}
    for entry in models:
        w = model_entry(entry, node_type, optional=not active)
        if w is None or (widgets and w.name not in selected and w.relpath not in selected):
            continue
        same = [f for f in found if f.relpath == w.relpath or f.basename == w.relpath]
        if same and same[0].folder is not None and same[0].folder != w.folder:
            w = replace(w, folder=same[0].folder)  # ComfyUI loads from the loader's folder, whatever the list says
        found = [f for f in found if f not in same] + [w]
    return found


def model_entry(entry: Any, node_type: str | None, *, optional: bool) -> Wanted | None:
    """A ``models`` entry ``{"name","url","directory","hash","hash_type"}`` as ComfyUI writes it."""
    if not isinstance(entry, dict):
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 1024 or "\n" in name:
        return None
    folder = None
    directory = entry.get("directory")
    if isinstance(directory, str) and directory.strip("/\\ "):
        parts = directory.replace("\\", "/").strip("/ ").split("/")
        folder = map_legacy(parts[0])
        if len(parts) > 1 and not name.replace("\\", "/").startswith("/".join(parts[1:]) + "/"):
            name = "/".join([*parts[1:], name])
    url = entry.get("url")
    url = url.strip() if isinstance(url, str) and url.strip().lower().startswith(("http://", "https://")) else None
    return Wanted(name, folder, node_type, _entry_hash(entry.get("hash"), entry.get("hash_type")), url, optional)


def _entry_hash(value: Any, kind: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, str):
        return ()
    text = value.strip()
    if ":" in text:  # "sha256:<hex>"
        prefix, text = text.split(":", 1)
        kind = kind or prefix
    canonical = {k.lower(): k for k in HASH_LENGTHS}.get(str(kind or "").lower().replace("-", ""))
    if canonical is None:
        canonical = next((k for k, n in HASH_LENGTHS.items() if n == len(text)), None)
    if canonical is None or not text or len(text) > HASH_LENGTHS[canonical] or not set(text) <= _HEX:
        return ()
    return ((canonical, text.upper()),)


def _value_refs(spec: Loader | None, node_type: str | None, name: str | None, value: Any, optional: bool,
                out: list[Wanted], depth: int) -> None:
    if isinstance(value, str):
        folder = spec.folder_of(name) if spec else None
        if is_model_file(value) or (folder in DIRECTORY_FOLDERS and _plain_name(value)):
            out.append(Wanted(value, folder, node_type, optional=optional))
        elif len(value) > 8:
            out.extend(prompt_references(value, node_type, optional=optional))
    elif depth < _MAX_VALUE_DEPTH and isinstance(value, dict):
        for key, item in value.items():
            _value_refs(spec, node_type, key if isinstance(key, str) else None, item, optional, out, depth + 1)
    elif depth < _MAX_VALUE_DEPTH and isinstance(value, list):
        for item in value:
            _value_refs(spec, node_type, name, item, optional, out, depth + 1)


def _plain_name(value: str) -> bool:
    return 0 < len(value.strip()) <= 1024 and "\n" not in value and value.strip().lower() not in ("none", "[none]")


def _ui_widgets(node: dict[str, Any], values: Any) -> list[tuple[str | None, Any]]:
    if isinstance(values, dict):
        return [(k if isinstance(k, str) else None, v) for k, v in values.items()]
    if not isinstance(values, list):
        return []
    spec = loader(_str(node.get("type")))
    names = [i["widget"].get("name") for i in _list(node.get("inputs"))
             if isinstance(i, dict) and isinstance(i.get("widget"), dict)]
    if len(names) != len(values) or (spec and spec.folders and not set(spec.folders) & set(names)):
        names = list(spec.widgets) if spec else []
    return [(names[i] if i < len(names) and isinstance(names[i], str) else None, v) for i, v in enumerate(values)]


def _ui_nodes(graph: dict[str, Any]) -> Iterator[tuple[dict[str, Any], bool, Any]]:
    """``(node, active, widgets_values)`` for every node of the graph, of its subgraph definitions and of its
    legacy group nodes. A definition is active when an active node (transitively) instantiates it."""
    defs = _subgraph_defs(graph)
    containers: list[tuple[str | None, list[dict[str, Any]]]] = [(None, _nodes(graph))]
    containers += [(sg_id, _nodes(sg)) for sg_id, sg in defs.items()]
    if sum(len(nodes) for _, nodes in containers) > MAX_NODES:
        raise MalformedWorkflow(f"The workflow has more than {MAX_NODES} nodes.")
    by_id = dict(containers)
    active_defs: set[str] = set()
    todo: list[str | None] = [None]
    while todo:
        for node in by_id[todo.pop()]:
            node_type = _str(node.get("type"))
            if node_type in defs and node_type not in active_defs and _on(node):
                active_defs.add(node_type)
                todo.append(node_type)
    groups = {name: _nodes(d) for name, d in _dict(_dict(graph.get("extra")).get("groupNodes")).items()
              if isinstance(d, dict)}
    instances: dict[str, list[tuple[dict[str, Any], bool]]] = {}
    for container, nodes in containers:
        live = container is None or container in active_defs
        for node in nodes:
            active = live and _on(node)
            yield node, active, node.get("widgets_values")
            group = _group_name(_str(node.get("type")) or "")
            if group in groups:
                instances.setdefault(group, []).append((node, active))
    for name, inner in groups.items():
        yield from _group_nodes(inner, instances.get(name, []))


def _on(node: dict[str, Any]) -> bool:
    return node.get("mode") not in INACTIVE_MODES


def _nodes(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _list(container.get("nodes")) if isinstance(n, dict)]


def _group_nodes(inner: list[dict[str, Any]], instances: list[tuple[dict[str, Any], bool]]
                 ) -> Iterator[tuple[dict[str, Any], bool, Any]]:
    """A legacy group node's instance holds the widget values of its inner nodes one after another; when the
    counts add up they are split back, else the inner nodes' own values are used."""
    sizes = [len(n["widgets_values"]) if isinstance(n.get("widgets_values"), list) else 0 for n in inner]
    if not instances:
        for node in inner:
            yield node, False, node.get("widgets_values")
        return
    for instance, active in instances:
        values = instance.get("widgets_values")
        split = isinstance(values, list) and len(values) == sum(sizes)
        start = 0
        for node, size in zip(inner, sizes, strict=False):
            own = values[start:start + size] if split and isinstance(values, list) else node.get("widgets_values")
            start += size
            yield node, active and _on(node), own


def _subgraph_defs(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    defs: dict[str, dict[str, Any]] = {}
    stack = [graph]
    while stack:
        for sg in _list(_dict(stack.pop().get("definitions")).get("subgraphs")):
            if isinstance(sg, dict) and isinstance(sg.get("id"), str) and sg["id"] not in defs:
                defs[sg["id"]] = sg
                stack.append(sg)
    return defs


def _group_name(node_type: str) -> str | None:
    for prefix in ("workflow>", "workflow/"):
        if node_type.startswith(prefix):
            return node_type[len(prefix):]
    return None


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
