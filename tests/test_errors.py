"""The error family: every code a user or a client can see belongs to exactly one class, and callers tell errors
apart by class (a download's bad bytes, an upstream's refusal), never by comparing code strings."""
from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
import requests

import shared
from shared.errors import (
    Archived,
    BadContent,
    DepotError,
    EarlyAccess,
    GatedRepo,
    HashMismatch,
    HtmlInsteadOfModel,
    LoginRequired,
    NotFound,
    RateLimited,
    Transient,
    UpstreamError,
    UpstreamRefused,
)
from shared.upstream.http import raise_for_status


def _all_error_classes() -> list[type[DepotError]]:
    for mod in pkgutil.walk_packages(shared.__path__, "shared."):
        importlib.import_module(mod.name)
    seen: list[type[DepotError]] = []
    todo: list[type[DepotError]] = [DepotError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def test_each_code_belongs_to_one_class_and_reads_as_snake_case() -> None:
    owners: dict[str, list[str]] = {}
    for cls in _all_error_classes():
        if "code" in vars(cls):
            owners.setdefault(cls.code, []).append(cls.__qualname__)
    assert {code: names for code, names in owners.items() if len(names) > 1} == {}
    assert [code for code in owners if not re.fullmatch(r"[a-z][a-z0-9_]*", code)] == []
    assert 400 <= min(cls.http_status for cls in _all_error_classes())


def test_bad_bytes_and_refusals_are_families() -> None:
    assert issubclass(HashMismatch, BadContent) and issubclass(HtmlInsteadOfModel, BadContent)
    assert all(issubclass(c, UpstreamRefused) for c in (GatedRepo, LoginRequired, Archived))
    # Early access ends by itself, a rate limit lifts: neither is a refusal that needs the user
    assert not issubclass(EarlyAccess, UpstreamRefused) and issubclass(RateLimited, Transient)
    assert RateLimited("x").retryable and not LoginRequired("x").retryable


def _response(status: int, body: str = "", **headers: str) -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp._content, resp.url = status, body.encode(), "https://example.com/f.safetensors"
    resp.headers.update(headers)
    return resp


@pytest.mark.parametrize("status,body,headers,cls", [
    (429, "", {"Retry-After": "7"}, RateLimited),
    (503, "", {}, Transient),
    (403, "", {"X-Error-Code": "GatedRepo"}, GatedRepo),
    (404, "", {}, NotFound),
    (410, "", {}, Archived),
    (403, '{"message": "This is an early access model"}', {}, EarlyAccess),
    (401, "", {}, LoginRequired),
    (418, "", {}, UpstreamError),
])
def test_an_upstream_answer_maps_to_its_class(status: int, body: str, headers: dict[str, str],
                                              cls: type[DepotError]) -> None:
    with pytest.raises(DepotError) as caught:
        raise_for_status(_response(status, body, **headers), "civitai")
    assert type(caught.value) is cls
    assert caught.value.to_dict()["code"] == cls.code
    if cls is RateLimited:
        assert caught.value.retry_after == 7
