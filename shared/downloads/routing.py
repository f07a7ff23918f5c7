"""Where a downloaded GGUF is published. The folder is decided when the file is published, from the header of
the verified bytes (``general.architecture``), not when the download is planned: the plan only knows the file
name and the source's model type (Civitai calls quantized Flux models "Checkpoint"), a peek at the first bytes
before the transfer would cost an extra upstream request per download (signed-URL redirects, rate limits) and
could miss a key GGUF does not oblige writers to put first, while at publish time the header is part of the
hash-verified file. A folder the user chose is kept, with a warning when no GGUF loader reads it there."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.media import gguf


@dataclass(frozen=True)
class Route:
    folder: str  #: where the file is published
    architecture: str | None
    note: str  #: what the task log and result say
    warning: bool = False

    def as_result(self, planned: str) -> dict[str, object]:
        return {"architecture": self.architecture, "folder": self.folder,
                "routed_from": planned if planned != self.folder else None, "note": self.note}


def route(part: Path, filename: str, folder: str, chosen: bool) -> Route | None:
    """The folder for a verified download (``part``) named ``filename`` and planned into ``folder``;
    ``chosen``: the user named that folder. None for anything but a ``.gguf`` bound for a model folder
    (``checkpoints``, ``diffusion_models``, ``text_encoders``): a GGUF planned or sent elsewhere (a LoRA, a
    VAE) is not this module's to move."""
    if not gguf.is_gguf_name(filename) or folder not in gguf.MODEL_FOLDERS:
        return None
    arch = gguf.architecture(part)
    wanted = gguf.loader_folder(arch)
    told = " as you chose" if chosen else ""
    if wanted is None:
        what = f"architecture {arch!r}" if arch else "no general.architecture"
        note = (f"The GGUF has {what}, not one ComfyUI-GGUF is known to load as a diffusion model or text encoder; "
                f"kept in {folder}{told}.")
        if folder == gguf.CHECKPOINTS:
            note += " ComfyUI's checkpoint loaders do not read .gguf files."
        return Route(folder, arch, note, warning=folder == gguf.CHECKPOINTS)
    kind = gguf.kind_of(wanted)
    if chosen and folder != wanted:
        return Route(folder, arch, f"This GGUF is a {kind} ({arch}), which ComfyUI-GGUF reads from {wanted}, not "
                                   f"{folder}; kept in {folder} as you chose. Move it from the library for ComfyUI "
                                   "to load it.", warning=True)
    if folder != wanted:
        return Route(wanted, arch, f"This GGUF is a {kind} ({arch}): saved in {wanted}, where ComfyUI-GGUF reads "
                                   f"it, instead of {folder}.")
    return Route(folder, arch, f"This GGUF is a {kind} ({arch}); {folder} is where ComfyUI-GGUF reads it.")
