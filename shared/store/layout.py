"""The store's folder layout exactly as ComfyUI resolves it: the default folder keys and directories of
``folder_paths.folder_names_and_paths`` (without ``configs`` and ``custom_nodes``, which are never download
targets), ComfyUI's extension set plus ``.gguf``, ``diffusers`` as directory models, and the folders added by
``extra_model_paths.yaml``. ``path_index`` is the index of a directory in a folder's list, in ComfyUI's order
(never sorted or de-duplicated)."""
from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import Settings
from shared.errors import InvalidPath, NotFound
from shared.store.extra_paths import LEGACY, add_folder_path, read_entries
from shared.store.paths import inside, normalise_relpath
from shared.store.sidecar_files import is_sidecar_name

PT_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".gguf"})
DIRECTORY_MODELS = frozenset({"diffusers"})
#: Never listed or written: a file there could be executed on every GPU host.
EXCLUDED = frozenset({"configs", "custom_nodes"})

#: ComfyUI's ``folder_names_and_paths`` order: (key, default dirs under models/, extensions).
DEFAULT_FOLDERS: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = (
    ("checkpoints", ("checkpoints",), PT_EXTENSIONS),
    ("loras", ("loras",), PT_EXTENSIONS),
    ("vae", ("vae",), PT_EXTENSIONS),
    ("text_encoders", ("text_encoders", "clip"), PT_EXTENSIONS),
    ("diffusion_models", ("unet", "diffusion_models"), PT_EXTENSIONS),
    ("clip_vision", ("clip_vision",), PT_EXTENSIONS),
    ("style_models", ("style_models",), PT_EXTENSIONS),
    ("embeddings", ("embeddings",), PT_EXTENSIONS),
    ("diffusers", ("diffusers",), frozenset({"folder"})),
    ("vae_approx", ("vae_approx",), PT_EXTENSIONS),
    ("controlnet", ("controlnet", "t2i_adapter"), PT_EXTENSIONS),
    ("gligen", ("gligen",), PT_EXTENSIONS),
    ("upscale_models", ("upscale_models",), PT_EXTENSIONS),
    ("latent_upscale_models", ("latent_upscale_models",), PT_EXTENSIONS),
    ("hypernetworks", ("hypernetworks",), PT_EXTENSIONS),
    ("photomaker", ("photomaker",), PT_EXTENSIONS),
    ("classifiers", ("classifiers",), frozenset({""})),
    ("model_patches", ("model_patches",), PT_EXTENSIONS),
    ("audio_encoders", ("audio_encoders",), PT_EXTENSIONS),
    ("background_removal", ("background_removal",), PT_EXTENSIONS),
    ("frame_interpolation", ("frame_interpolation",), PT_EXTENSIONS),
    ("geometry_estimation", ("geometry_estimation",), PT_EXTENSIONS),
    ("optical_flow", ("optical_flow",), PT_EXTENSIONS),
    ("detection", ("detection",), PT_EXTENSIONS),
)


@dataclass(frozen=True)
class Folder:
    name: str
    paths: tuple[str, ...]
    extensions: frozenset[str]

    def accepts(self, filename: str) -> bool:
        """ComfyUI's filter: an empty extension set accepts every file."""
        if not self.extensions:
            return True
        return os.path.splitext(filename)[1].lower() in self.extensions

    def holds(self, name: str) -> bool:
        """Whether the scan lists the file ``name`` of this folder as a model: ComfyUI's filter, without hidden
        files; in a folder that takes other extensions than the model ones (an ``extra_model_paths.yaml``
        category takes every file), sidecars and previews (``x.md``, ``x.webp``) are not models. The scan
        applies the same rule inline."""
        if name[:1] == "." or not self.accepts(name):
            return False
        return self.extensions == PT_EXTENSIONS or not is_sidecar_name(name)


def unknown_folder_message(name: str, known: Iterable[str]) -> str:
    """"No model folder named 'lora' — did you mean 'loras'?" with the folders there are: the usual slips are a
    singular, a case, a typo, ComfyUI's old name (``unet``)."""
    names = sorted(known)
    by_lower = {n.lower(): n for n in names}
    key = name.strip().lower()
    close = difflib.get_close_matches(key, list(by_lower), n=1, cutoff=0.75)
    tries = (key, LEGACY.get(key, ""), key + "s", key.removesuffix("s"), key + "_models", *close)
    found = next((by_lower[k] for k in tries if k in by_lower), None)
    hint = f" — did you mean {found!r}?" if found else "."
    return f"No model folder named {name[:64]!r}{hint} The store's folders: {', '.join(names)}."


class StoreLayout:
    """Folders and their directories; resolves and locates model paths safely."""

    def __init__(self, store: Path, extra_yaml: tuple[Path, ...] = ()) -> None:
        self.store = Path(os.path.abspath(store))
        table: dict[str, list[str]] = {}
        exts: dict[str, frozenset[str]] = {}
        for name, dirs, ext in DEFAULT_FOLDERS:
            table[name] = [os.path.normpath(os.path.join(self.store, d)) for d in dirs]
            exts[name] = ext
        for yaml_path in extra_yaml:
            for folder, full, is_default in read_entries(yaml_path):
                add_folder_path(table, folder, full, is_default)
                exts.setdefault(folder, frozenset())  # unknown key: new category, every file accepted
        self._folders = {n: Folder(n, tuple(p), exts[n]) for n, p in table.items() if n not in EXCLUDED}

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreLayout:
        layout = cls(settings.store, tuple(settings.extra_model_paths))
        layout.ensure_default_dirs()
        return layout

    def ensure_default_dirs(self) -> None:
        """Create the ComfyUI folder set under the store on first use (extra paths are never created)."""
        for _name, dirs, _ext in DEFAULT_FOLDERS:
            for d in dirs:
                os.makedirs(self.store / d, exist_ok=True)

    # --- queries ------------------------------------------------------------------------------------

    def folders(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "paths": list(f.paths)} for f in self._folders.values()]

    def folder(self, name: str) -> Folder:
        try:
            return self._folders[name]
        except KeyError:
            raise NotFound(unknown_folder_message(name, self._folders)) from None

    def names(self) -> list[str]:
        return list(self._folders)

    def root(self, folder: str, path_index: int) -> Path:
        paths = self.folder(folder).paths
        if not isinstance(path_index, int) or isinstance(path_index, bool) or not 0 <= path_index < len(paths):
            raise InvalidPath(f"Folder {folder!r} has {len(paths)} path(s); path_index {path_index!r} is out of range.")
        return Path(paths[path_index])

    def resolve(self, folder: str, path_index: int, relpath: str) -> Path:
        """The absolute path of a model; refuses anything that would leave the folder root."""
        root = self.root(folder, path_index)
        rel = normalise_relpath(relpath)
        return inside(root, root / rel)

    def locate(self, abs_path: str | Path) -> dict[str, Any] | None:
        """The ``{"folder","path_index","relpath"}`` of an absolute path, or None outside every root. The most
        specific (longest) root wins; ties go to ComfyUI's order."""
        path = os.path.normpath(os.path.abspath(abs_path))
        best: tuple[int, dict[str, Any]] | None = None
        for f in self._folders.values():
            for i, root in enumerate(f.paths):
                prefix = root.rstrip(os.sep) + os.sep
                if path.startswith(prefix) and (best is None or len(root) > best[0]):
                    rel = path[len(prefix):].replace(os.sep, "/")
                    best = (len(root), {"folder": f.name, "path_index": i, "relpath": rel})
        return best[1] if best else None

    def roots(self) -> list[tuple[str, int, Path]]:
        return [(f.name, i, Path(p)) for f in self._folders.values() for i, p in enumerate(f.paths)]
