"""Whether each GPU host can run a workflow: every needed (not optional) reference present and visible there.

A model in a root under the store is visible on every host that mounts the store, unless the host's mount lacks
that folder (``DEPOT_HOST_MOUNTS`` entry ``host:folder=``, see shared/comfyui_config.py). A model in a root outside
the store (another ``extra_model_paths.yaml`` root of the depot's host) is visible only on the depot's own host.
The hosts are given by the caller (the live workers' hosts, or the ones asked about); this module knows nothing
of worker presence."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from shared.comfyui_config import lacking_folders
from shared.config import Settings
from shared.errors import DepotError
from shared.store.index import split_id
from shared.store.layout import StoreLayout
from shared.workflows.refs import Reference


@dataclass(frozen=True)
class Host:
    name: str
    own: bool  #: the depot's own host, which also sees roots outside the store
    lacks: frozenset[str]  #: folders its mount of the store does not have


def hosts_for(settings: Settings, names: list[str]) -> list[Host]:
    return [Host(n, n == settings.host, lacking_folders(settings, n)) for n in sorted(set(names))]


def visible(layout: StoreLayout, host: Host, folder: str, path_index: int) -> bool:
    try:
        root = os.path.normpath(str(layout.root(folder, path_index)))
    except DepotError:
        return False  # a folder or root the layout no longer has
    store = os.path.normpath(str(layout.store))
    if root != store and not root.startswith(store + os.sep):
        return host.own
    return folder not in host.lacks


def apply(layout: StoreLayout, hosts: list[Host], refs: list[Reference]) -> tuple[list[Reference], dict[str, bool]]:
    """``refs`` with ``hosts`` filled in, and ``{host: ready}``."""
    out = []
    for ref in refs:
        places = [split_id(mid) for mid in ref.usable] if ref.state == "present" else []
        seen = {h.name: any(visible(layout, h, folder, pi) for folder, pi, _rel in places) for h in hosts}
        out.append(replace(ref, hosts=seen))
    ready = {h.name: all(r.hosts[h.name] for r in out if not r.optional) for h in hosts}
    return out, ready
