"""Whether each GPU host can run a workflow: every needed (not optional) reference present and visible there.

A model in a root under the store is visible on every host that mounts the store, unless the host's mount lacks
that folder (``DEPOT_HOST_MOUNTS`` entry ``host:folder=``, see shared/comfyui_config.py). A model in a root outside
the store (another ``extra_model_paths.yaml`` root of the depot's host) is visible only on the depot's own host.
The hosts are given by the caller (the live workers' hosts, or the ones asked about); this module knows nothing
of worker presence."""
from __future__ import annotations

import os
from dataclasses import dataclass

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


class Visibility:
    """Which hosts see which roots, worked out once per root for one check."""

    def __init__(self, layout: StoreLayout, hosts: list[Host]) -> None:
        self.layout, self.hosts = layout, hosts
        self._store = os.path.normpath(str(layout.store))
        self._roots: dict[tuple[str, int], dict[str, bool]] = {}

    def root(self, folder: str, path_index: int) -> dict[str, bool]:
        key = (folder, path_index)
        if key not in self._roots:
            self._roots[key] = {h.name: self._sees(h, folder, path_index) for h in self.hosts}
        return self._roots[key]

    def _sees(self, host: Host, folder: str, path_index: int) -> bool:
        try:
            root = os.path.normpath(str(self.layout.root(folder, path_index)))
        except DepotError:
            return False  # a folder or root the layout no longer has
        if root != self._store and not root.startswith(self._store + os.sep):
            return host.own
        return folder not in host.lacks

    def of(self, usable: tuple[str, ...]) -> dict[str, bool]:
        """Per host: whether one of these index ids (the files that satisfy a reference) is visible there."""
        seen = dict.fromkeys((h.name for h in self.hosts), False)
        for mid in usable:
            folder, pi, _rel = split_id(mid)
            for name, ok in self.root(folder, pi).items():
                seen[name] = seen[name] or ok
        return seen


def ready(hosts: list[Host], refs: list[Reference]) -> dict[str, bool]:
    """Per host: every needed (not optional) reference present and visible there."""
    return {h.name: all(r.hosts.get(h.name, False) for r in refs if not r.optional) for h in hosts}
