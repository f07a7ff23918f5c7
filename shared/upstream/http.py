"""One HTTP client for everything fetched from upstream (models, API answers, preview images): redirects followed
by hand so every hop passes the address guard and the Bearer key is sent only to the host it belongs to (never
forwarded across hosts, as huggingface_hub and the Civitai notes require), a non-browser User-Agent (Civitai
answers browsers with HTML), and the mapping of upstream answers to the stable error codes users see."""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from shared.config import Settings
from shared.errors import (
    Archived,
    DepotError,
    EarlyAccess,
    GatedRepo,
    LoginRequired,
    NotFound,
    RateLimited,
    Transient,
    UpstreamError,
)
from shared.upstream.netguard import check_url
from shared.upstream.urls import SOURCE_NAMES

USER_AGENT = "model-depot/1.0 (+https://github.com/; python-requests)"
MAX_REDIRECTS = 10


class TooManyRedirects(UpstreamError):
    code = "too_many_redirects"


def netloc(url: str) -> str:
    p = urlsplit(url)
    return f"{(p.hostname or '').lower()}:{p.port or (443 if p.scheme == 'https' else 80)}"


class HttpClient:
    """A ``requests.Session`` wrapper; ``key`` is the Bearer token for the first URL's host only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT})
        # a segmented download keeps one connection per segment open to one host: the pool holds them all, so
        # each connection is reused for its next segment instead of being dropped and opened again
        pool = max(10, settings.download_connections)
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, requests.adapters.HTTPAdapter(pool_connections=10, pool_maxsize=pool))

    def open(self, url: str, *, key: str | None = None, method: str = "GET", headers: dict[str, str] | None = None,
             timeout: float | None = None, stream: bool = True, follow: Callable[[str], bool] | None = None,
             data: bytes | None = None) -> requests.Response:
        """Send the request, following redirects hop by hop. ``follow(location)`` may refuse a hop (HEAD on
        Hugging Face follows only relative redirects). Returns the final response (not raised for status)."""
        origin = netloc(url)
        read_timeout = timeout if timeout is not None else self.settings.stall_s
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, self.settings.allow_private_urls)
            hop_headers = dict(headers or {})
            if key and netloc(url) == origin:
                hop_headers["Authorization"] = f"Bearer {key}"
            try:
                resp = self.session.request(method, url, headers=hop_headers, stream=stream, allow_redirects=False,
                                            timeout=(min(10.0, read_timeout), read_timeout), data=data)
            except (requests.ConnectionError, requests.Timeout) as exc:
                why = network_reason(exc)
                raise Transient(f"Cannot reach {urlsplit(url).hostname} ({why}). Check the link and the network, "
                                "then retry.", details={"reason": why}) from None
            location = resp.headers.get("Location")
            if resp.status_code in (301, 302, 303, 307, 308) and location:
                nxt = urljoin(url, location)
                if follow is not None and not follow(location):
                    return resp
                resp.close()
                url = nxt
                continue
            return resp
        raise TooManyRedirects(f"Too many redirects starting at {url}.")

    def fetch_bytes(self, url: str, limit: int, *, timeout: float = 30.0) -> bytes | None:
        """A small resource (a preview image) through the guarded client; None when it is not a 200 or is
        larger than ``limit`` bytes."""
        with self.open(url, timeout=timeout) as resp:
            if resp.status_code != 200:
                return None
            data = resp.raw.read(limit + 1, decode_content=True)
        return data if len(data) <= limit else None

    def get_json(self, url: str, *, key: str | None = None, source: str = "direct", retries: int = 3) -> Any:
        """GET a JSON API with a few retries on 429/5xx/network errors; errors mapped to stable codes."""
        err: DepotError = Transient(f"{urlsplit(url).hostname} did not answer; try again later.")
        for attempt in range(retries + 1):
            try:
                resp = self.open(url, key=key, stream=False, timeout=30.0,
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
                raise_for_status(resp, source)
                return resp.json()
            except DepotError as exc:
                if not exc.retryable:
                    raise
                err = exc
            except (ValueError, requests.RequestException):
                raise UpstreamError(f"{url} did not answer with JSON.") from None
            if attempt < retries:
                time.sleep(backoff(attempt, err.retry_after))
        raise err


def network_reason(exc: BaseException) -> str:
    """A network error in the words a person uses: "connection refused", "timed out", ..."""
    text = str(exc).lower()
    for needle, words in (("refused", "connection refused"), ("name or service not known", "unknown host name"),
                          ("temporary failure in name resolution", "unknown host name"),
                          ("timed out", "timed out"), ("reset by peer", "connection reset"),
                          ("unreachable", "network unreachable")):
        if needle in text:
            return words
    return type(exc).__name__


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Jittered exponential backoff from 0.5 s capped at 30 s; a server's Retry-After wins (capped at 300 s)."""
    if retry_after is not None:
        return min(float(retry_after), 300.0)
    return float(min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.5))


def _body(resp: requests.Response) -> dict[str, Any]:
    try:
        data = json.loads(resp.content[:65536] or b"{}")
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def _login_message(resp: requests.Response, source: str, answer: str) -> str:
    """What to do about a refusal: add a key, or, when the request carried one, replace the key that was refused."""
    host = urlsplit(resp.url).hostname
    which = SOURCE_NAMES.get(source)
    if which is None:
        return f"{host} refused the download ({answer}): the link needs a login this server does not have."
    where = f"`depot keys set {source}` or the dashboard's Settings view"
    if resp.request is not None and resp.request.headers.get("Authorization"):
        return (f"{which} refused the API key that is set ({answer}): it may have been revoked, or it lacks access "
                f"to this model. Set a new key with {where}, then retry.")
    return f"{which} requires a login for this file ({answer}). Add your {which} API key with {where}, then retry."


def retry_after(resp: requests.Response) -> float | None:
    """The server's Retry-After in seconds (numeric form), or None."""
    raw = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def raise_for_status(resp: requests.Response, source: str) -> None:
    """Map a non-2xx answer to a DepotError with a stable code and a message that says what to do."""
    status = resp.status_code
    if status < 400 or status == 416:
        return
    body, host = _body(resp), urlsplit(resp.url).hostname
    text = " ".join(str(body.get(k, "")) for k in ("error", "message")).strip()
    hf_code = resp.headers.get("X-Error-Code", "")
    if status == 429:
        raise RateLimited(f"{host} is rate limiting downloads ({text or 'HTTP 429'}). Wait and retry later.",
                          retry_after=retry_after(resp))
    if status >= 500:
        raise Transient(f"{host} failed with HTTP {status} ({text or 'server error'}); retrying may help.",
                        retry_after=retry_after(resp))
    if hf_code == "GatedRepo":
        raise GatedRepo(f"This Hugging Face repository is gated: {resp.headers.get('X-Error-Message', '')} "
                        "Request access on its Hugging Face page, then set your Hugging Face key "
                        "(PUT /api/v1/settings/keys/huggingface).")
    if hf_code in ("RepoNotFound", "EntryNotFound", "RevisionNotFound") or status == 404:
        raise NotFound(f"Not found upstream ({text or hf_code or 'HTTP 404'}): {resp.url.split('?')[0]}. "
                       "Check the link, the version or the file name.")
    if status == 410:
        raise Archived(f"The model is archived on Civitai and can no longer be downloaded ({text or 'HTTP 410'}).")
    if status == 403 and "early access" in text.lower():
        raise EarlyAccess(f"This version is in Early Access on Civitai ({body.get('message', '')}). Buy access "
                          "or wait until it ends, then retry.")
    if status in (401, 403):
        raise LoginRequired(_login_message(resp, source, f"HTTP {status}: {text or 'login required'}"))
    raise UpstreamError(f"{host} answered HTTP {status} ({text or 'error'}).", http_status=502)
