"""Turn what a user pasted (plus their choices: folder, file id, expected sha256) into a Plan, and answer
``GET /resolve`` with the versions and files a URL offers so the user can choose before starting."""
from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote

from shared.config import Settings
from shared.downloads import civitai_plan, huggingface_plan
from shared.downloads.plan import DEFAULT_FOLDER, Plan
from shared.errors import (
    DepotError,
    EarlyAccess,
    HtmlInsteadOfModel,
    InvalidRequest,
    LoginRequired,
    NotFound,
    UpstreamRefused,
)
from shared.media import gguf
from shared.media.imaging import VIDEO_TYPES, encode_webp, open_image, sniff_media
from shared.upstream import civitai, huggingface
from shared.upstream.http import HttpClient, netloc, raise_for_status
from shared.upstream.images import fetch_civitai_preview
from shared.upstream.keystore import KeyStore
from shared.upstream.netguard import PrivateAddressRefused
from shared.upstream.urls import Source, filename_from_url, parse_source

_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")
#: What a HEAD answers for a page people look at, not a file to download.
_WEB_PAGE_TYPES = ("text/html", "application/xhtml+xml")


def key_for(settings: Settings, name: str | None) -> str | None:
    return KeyStore.from_settings(settings).get(name) if name else None


def direct_key_name(settings: Settings, url: str) -> str | None:
    """A direct link to Civitai's or Hugging Face's own host still gets that site's key (never another's)."""
    if netloc(url) == netloc(settings.civitai_url):
        return "civitai"
    if netloc(url) == netloc(settings.hf_endpoint):
        return "huggingface"
    return None


def make_plan(settings: Settings, http: HttpClient, url: str, *, folder: str | None = None,
              file_id: Any = None, sha256: str | None = None) -> Plan:
    """Resolve ``url`` to exactly one artifact. Raises DepotError subclasses with stable codes."""
    if sha256 is not None and not _SHA256.match(sha256):
        raise InvalidRequest("Field 'sha256' must be 64 hexadecimal characters.")
    src = parse_source(url, settings)
    if src.kind == "civitai":
        civitai.require_version(src)
        key = key_for(settings, "civitai")
        model, version = civitai.fetch(http, settings, src, key)
        fid = int(file_id) if file_id not in (None, "") and str(file_id).isdigit() else None
        if file_id not in (None, "") and fid is None:
            raise InvalidRequest("Field 'file_id' must be a Civitai file id (a number) for a Civitai link.")
        plan = civitai_plan.build_plan(settings, model, version, civitai_plan.choose_file(version, src, fid), folder)
    elif src.kind == "huggingface":
        key = key_for(settings, "huggingface")
        if src.path is None:
            path = str(file_id) if file_id else huggingface_plan.pick_path(
                huggingface.list_files(http, settings, src, key), src)
            src = Source("huggingface", url, repo=src.repo, revision=src.revision, path=path)
        plan = huggingface_plan.build_plan(settings, src, huggingface.head(http, settings, src, key), folder)
    else:
        plan = _direct_plan(settings, http, url, folder)
    if sha256:
        if plan.sha256 and plan.sha256 != sha256.lower():
            raise InvalidRequest(f"The sha256 you gave differs from the one upstream publishes ({plan.sha256}).")
        plan.sha256 = sha256.lower()
        if plan.source == "direct":
            plan.idem_key = f"url:{url}#{plan.sha256}"
    return plan


def _direct_plan(settings: Settings, http: HttpClient, url: str, folder: str | None) -> Plan:
    key_name = direct_key_name(settings, url)
    name, size = filename_from_url(url), None
    try:
        resp = http.open(url, key=key_for(settings, key_name), method="HEAD", stream=False, timeout=30.0,
                         headers={"Accept-Encoding": "identity"})
        if resp.status_code < 400:
            attached = _disposition_name(resp.headers.get("Content-Disposition"))
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype in _WEB_PAGE_TYPES and not attached:
                # Refused for what it is, before its name (a page's URL rarely ends like a model file) is judged
                raise HtmlInsteadOfModel(
                    f"{url} is a web page ({ctype}), not a model file. Open it in a browser and copy the link of "
                    "its download button, or paste a Civitai or Hugging Face model page.", http_status=400)
            name = attached or filename_from_url(resp.url) or name
            size = int(resp.headers["Content-Length"]) if resp.headers.get("Content-Length", "").isdigit() else None
        elif resp.status_code not in (405, 501):
            raise_for_status(resp, "direct")
    except (PrivateAddressRefused, NotFound, UpstreamRefused, HtmlInsteadOfModel):
        raise
    except DepotError:
        pass  # a HEAD some servers answer badly (an error page, a 5xx) need not stop the GET that follows
    meta: dict[str, Any] = {"model_name": name.rsplit(".", 1)[0], "author": None, "website": "Direct Link",
                            "model_page": url, "base_model": None,
                            "trigger_words": [], "about": "", "description": "", "images": []}
    return Plan(source="direct", url=url, filename=name, folder=folder or gguf.planned_folder(name, DEFAULT_FOLDER),
                idem_key=f"url:{url}#", key_name=key_name, size=size, meta=meta)


def _preview(http: HttpClient, images: Any, nsfw_level: int) -> str | None:
    """The first eligible preview as a small WebP ``data:`` URI: fetched here (guarded, size-capped), so the page
    loads nothing from elsewhere and the user's browser never calls the image host; None for none or a video."""
    try:
        data = fetch_civitai_preview(http, images, nsfw_level)
        if data is None or sniff_media(data) in VIDEO_TYPES:
            return None
        webp = encode_webp(open_image(data, "The preview"), side=320, quality=80)
    except DepotError:
        return None
    return "data:image/webp;base64," + base64.b64encode(webp).decode()


def _access(http: HttpClient, plan: Plan, key: str | None) -> dict[str, Any] | None:
    """What Civitai answers a download of ``plan`` now: None when it would start, else the refusal's code and
    message (login required, early access, a refused key)."""
    try:
        # A GET whose body is never read (a HEAD's answer has no body, and Civitai says why in the body); the
        # redirect to the file's storage is not followed
        with http.open(plan.url, key=key, timeout=15.0, follow=lambda _loc: False) as resp:
            raise_for_status(resp, "civitai")
    except (LoginRequired, EarlyAccess) as exc:
        return {"code": exc.code, "message": exc.message}
    except DepotError:
        return None  # anything else is for the download itself to meet and report
    return None


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    m = re.search(r"filename\*=UTF-8''([^;]+)", header) or re.search(r'filename="([^"]+)"', header) \
        or re.search(r"filename=([^;]+)", header)
    return unquote(m.group(1).strip()).rsplit("/", 1)[-1] if m else None


def describe(settings: Settings, http: HttpClient, url: str, *, nsfw_level: int | None = None) -> dict[str, Any]:
    """The ``GET /resolve`` answer: source, versions/files to choose from, suggested folder and filename; for
    Civitai also the preview (within ``nsfw_level``), base model, trigger words, and ``access``: what a download
    would meet now (a login, early access), asked of Civitai before anything is queued."""
    src = parse_source(url, settings)
    out: dict[str, Any] = {"source": src.kind, "url": url, "versions": [], "files": []}
    if src.kind == "civitai":
        civitai.require_version(src)
        model, version = civitai.fetch(http, settings, src, key_for(settings, "civitai"))
        out.update(civitai_plan.describe(model, version))
        out["files"] = next((v["files"] for v in out["versions"] if v["id"] == version["id"]), [])
        plan = civitai_plan.build_plan(settings, model, version, civitai_plan.choose_file(version, src, None), None)
        level = settings.nsfw_level if nsfw_level is None else nsfw_level
        out.update({"model_name": plan.meta["model_name"], "model_type": plan.meta["model_type"],
                    "version_id": version["id"], "file_id": plan.meta["file_id"],
                    "base_model": plan.meta["base_model"], "trigger_words": plan.meta["trigger_words"],
                    "preview": _preview(http, plan.meta["images"], level),
                    "access": _access(http, plan, key_for(settings, "civitai"))})
    elif src.kind == "huggingface":
        out["files"] = huggingface_plan.with_folders(huggingface.list_files(http, settings, src,
                                                                            key_for(settings, "huggingface")))
        out["repo"], out["revision"] = src.repo, src.revision
        if src.path is None:
            models = [f for f in out["files"] if f["type"] == "Model"]
            out["suggested_folder"] = huggingface_plan.guess_folder(models[0]["path"]) if models else DEFAULT_FOLDER
            out["suggested_filename"] = models[0]["name"] if len(models) == 1 else None
            return out
        plan = make_plan(settings, http, url)
    else:
        plan = _direct_plan(settings, http, url, None)
        out["files"] = [{"id": None, "name": plan.filename, "size": plan.size, "type": "Model", "hashes": {},
                         "folder": plan.folder}]
    out.update({"suggested_folder": plan.folder, "suggested_filename": plan.filename, "size": plan.size,
                "sha256": plan.sha256})
    return out
