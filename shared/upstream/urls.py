"""Parse what a user pastes into a download source: Civitai model pages and version download URLs, Hugging Face
resolve/blob/tree URLs (or a repo URL plus a file choice), and any other http(s) URL as a direct link. Pure
string work; no network."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from shared.config import Settings
from shared.errors import InvalidRequest

_FILE_EXTENSIONS = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".pt2", ".pkl", ".zip")
_CIVITAI_HOSTS = {"civitai.com", "www.civitai.com", "civitai.green", "civitai.red"}


@dataclass(frozen=True)
class Source:
    """What a URL names. ``kind`` is ``civitai``, ``huggingface`` or ``direct``."""

    kind: str
    url: str
    model_id: int | None = None
    version_id: int | None = None
    query: dict[str, str] = field(default_factory=dict)  #: Civitai download filters: type, format, fileId…
    repo: str | None = None
    revision: str = "main"
    path: str | None = None  #: file inside the Hugging Face repo (None = the user must choose)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _same_site(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.hostname or "").lower() == (b.hostname or "").lower() and (a.port == b.port)


#: The services a source names, as people call them (messages, key checks, verify verdicts).
SOURCE_NAMES = {"civitai": "Civitai", "huggingface": "Hugging Face"}

#: ``civitai.com/models/1`` or ``huggingface.co/x/y``: a host name with a dot, then a path or nothing.
_BARE_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+(?::\d+)?(?:[/?#]|$)")


def normalise_url(url: str) -> str:
    """``url`` as people paste it, made a link: trimmed, and ``https://`` put before a bare host name (copied
    from an address bar that hides the scheme)."""
    url = (url or "").strip()
    if "://" not in url and _BARE_HOST.match(url):
        return "https://" + url
    return url


def parse_source(url: str, settings: Settings) -> Source:
    """Classify ``url``. Raises InvalidRequest for anything that is not an absolute http(s) URL."""
    url = normalise_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"Not a download URL: {url!r}. Paste an http(s) link to a Civitai model, a Hugging "
                             "Face file, or a direct file.")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if _same_site(url, settings.civitai_url) or _host(url) in _CIVITAI_HOSTS:
        found = _civitai(url, parts.path, query)
        if found is not None:
            return found
    if _same_site(url, settings.hf_endpoint) or _host(url) in ("huggingface.co", "hf.co"):
        found = _huggingface(url, parts.path, settings)
        if found is not None:
            return found
    return Source("direct", url)


def _civitai(url: str, path: str, query: dict[str, str]) -> Source | None:
    m = re.match(r"^/api/download/models/(\d+)/?$", path)
    if m:
        names = ("type", "format", "size", "fp", "quantType", "fileId")
        filters: dict[str, str] = {k: query[k] for k in names if k in query}
        return Source("civitai", url, version_id=int(m.group(1)), query=filters)
    m = re.match(r"^/models/(\d+)(?:/[^/]*)?/?$", path) or re.match(r"^/api/v1/models/(\d+)/?$", path)
    if m:
        vid = query.get("modelVersionId")
        return Source("civitai", url, model_id=int(m.group(1)), version_id=int(vid) if vid and vid.isdigit() else None)
    m = re.match(r"^/(?:api/v1/)?model-versions/(\d+)/?$", path)
    if m:
        return Source("civitai", url, version_id=int(m.group(1)))
    return None


def _huggingface(url: str, path: str, settings: Settings) -> Source | None:
    segs = [unquote(s) for s in path.strip("/").split("/") if s]
    if segs[:1] in (["api"], ["datasets"], ["spaces"]) or len(segs) < 2:
        return None
    repo = "/".join(segs[:2])
    if len(segs) == 2:
        # "org/name.safetensors" is a file on some server that shares the host, not a repo page
        if segs[1].lower().endswith(_FILE_EXTENSIONS):
            return None
        return Source("huggingface", url, repo=repo)
    if len(segs) >= 4 and segs[2] in ("resolve", "blob", "tree", "raw"):
        rest = "/".join(segs[4:]) or None
        if segs[2] == "tree":
            return Source("huggingface", url, repo=repo, revision=segs[3], path=None, query={"dir": rest or ""})
        return Source("huggingface", url, repo=repo, revision=segs[3], path=rest)
    return None


def civitai_download_url(settings: Settings, version_id: int, file_id: int | None = None,
                         query: dict[str, str] | None = None) -> str:
    """The API download URL for a version (and one exact file when ``file_id`` is given)."""
    base = settings.civitai_url.rstrip("/") + f"/api/download/models/{version_id}"
    if file_id is not None:
        return f"{base}?fileId={file_id}"
    q = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return f"{base}?{q}" if q else base


def hf_resolve_url(settings: Settings, repo: str, revision: str, path: str) -> str:
    from urllib.parse import quote
    return f"{settings.hf_endpoint.rstrip('/')}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def filename_from_url(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name or "download.bin"
