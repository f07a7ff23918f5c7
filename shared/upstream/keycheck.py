"""Whether an API key works, asked of the service it is for when it can be reached: Civitai's ``GET /api/v1/me``
(an authenticated endpoint: a bad token is treated as anonymous there and answered 401) and Hugging Face's
``GET /api/whoami-v2``."""
from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.errors import DepotError, InvalidRequest
from shared.upstream.http import HttpClient
from shared.upstream.urls import SOURCE_NAMES

#: Where a user gets a new key, said when one is rejected.
KEY_PAGES = {"civitai": "civitai.com/user/account (API Keys)", "huggingface": "huggingface.co/settings/tokens"}


class KeyRejected(InvalidRequest):
    code = "key_rejected"


@dataclass(frozen=True)
class KeyCheck:
    #: ``accepted``, or ``unchecked`` when the service could not say (unreachable, an unexpected answer)
    status: str
    message: str


def _check_url(settings: Settings, name: str) -> str:
    if name == "civitai":
        return settings.civitai_url.rstrip("/") + "/api/v1/me"
    return settings.hf_endpoint.rstrip("/") + "/api/whoami-v2"


def check_key(settings: Settings, http: HttpClient, name: str, value: str) -> KeyCheck:
    """Ask the service; raises KeyRejected when it refuses the key (nothing should be saved then)."""
    service = SOURCE_NAMES[name]
    try:
        resp = http.open(_check_url(settings, name), key=value, stream=False, timeout=10.0,
                         headers={"Accept": "application/json"})
    except DepotError as exc:
        return KeyCheck("unchecked", f"{service} could not be reached to check the key ({exc.message}); it is saved "
                                     "and will be tried by the next download that needs it.")
    if resp.status_code in (401, 403):
        raise KeyRejected(f"{service} rejected this key (HTTP {resp.status_code}), so it was not saved. Copy it "
                          f"again from {KEY_PAGES[name]}; a key you have revoked or regenerated no longer works.")
    if resp.status_code < 300:
        return KeyCheck("accepted", f"{service} accepted the key.")
    return KeyCheck("unchecked", f"{service} answered HTTP {resp.status_code} to the key check; the key is saved "
                                 "and will be tried by the next download that needs it.")
