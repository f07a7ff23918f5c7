"""ComfyUI's ``extra_model_paths.yaml`` with its exact semantics (``utils/extra_config.py``): top-level keys are
section names (a null section is skipped); in a section, ``base_path`` gets ``~``/``$VAR`` expansion and is
resolved against the YAML file's directory when relative; ``is_default`` puts the section's paths first; every
other key is a folder name whose value is split on newlines (so a ``|`` block holds several paths, empty lines
skipped), each joined onto ``base_path`` (or resolved against the YAML dir) and normalised. Legacy folder names
are mapped like ComfyUI's ``map_legacy``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

#: ComfyUI ``folder_paths.map_legacy``.
LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}


def map_legacy(name: str) -> str:
    return LEGACY.get(name, name)


def read_entries(path: str | Path) -> list[tuple[str, str, bool]]:
    """``(folder, absolute normalised path, is_default)`` in file order, as ComfyUI would register them."""
    yaml_path = Path(path)
    config = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{yaml_path}: the top level must be a mapping of sections")
    yaml_dir = os.path.dirname(os.path.abspath(yaml_path))
    out: list[tuple[str, str, bool]] = []
    for _section, conf in config.items():
        if conf is None:
            continue
        if not isinstance(conf, dict):
            raise ValueError(f"{yaml_path}: section {_section!r} must be a mapping")
        out.extend(_section_entries(dict(conf), yaml_dir))
    return out


def _section_entries(conf: dict[str, Any], yaml_dir: str) -> list[tuple[str, str, bool]]:
    base_path = None
    if "base_path" in conf:
        base_path = os.path.expandvars(os.path.expanduser(str(conf.pop("base_path"))))
        if not os.path.isabs(base_path):
            base_path = os.path.abspath(os.path.join(yaml_dir, base_path))
    is_default = bool(conf.pop("is_default", False))
    out = []
    for folder, value in conf.items():
        for line in str(value).split("\n"):
            if len(line) == 0:
                continue
            full = line
            if base_path:
                full = os.path.join(base_path, full)
            elif not os.path.isabs(full):
                full = os.path.abspath(os.path.join(yaml_dir, line))
            out.append((map_legacy(str(folder)), os.path.normpath(full), is_default))
    return out


def parse_extra_model_paths(path: str | Path) -> dict[str, list[str]]:
    """The folders an ``extra_model_paths.yaml`` adds, ``{folder: [abs paths in registration order]}``.
    ``is_default`` entries are listed first, exactly as ComfyUI's ``add_model_folder_path`` orders them."""
    result: dict[str, list[str]] = {}
    for folder, full, is_default in read_entries(path):
        add_folder_path(result, folder, full, is_default)
    return result


def add_folder_path(table: dict[str, list[str]], folder: str, full: str, is_default: bool) -> None:
    """ComfyUI's ``add_model_folder_path``: append, or move/insert first when ``is_default``."""
    paths = table.setdefault(folder, [])
    if full in paths:
        if is_default:
            paths.remove(full)
            paths.insert(0, full)
        return
    if is_default:
        paths.insert(0, full)
    else:
        paths.append(full)
