"""The one way a download starts: check its params, resolve the URL to exactly one artifact (the plan, kept in
the task so every attempt on any host fetches the same bytes), check where it will land, and hand it to the
caller's ``submit`` under the artifact's idempotency key (the same artifact asked for again, from any host, gets
the live task back). The API, the repair action and workflow fetches all come through here; ``shared/`` knows no
Celery, so the caller passes its dispatcher's ``submit``."""
from __future__ import annotations

from typing import Any, Protocol

from shared.config import Settings
from shared.downloads.plan import Plan
from shared.downloads.publish import check_filename, target_path
from shared.downloads.resolve import make_plan
from shared.errors import InvalidPath, InvalidRequest
from shared.store.layout import StoreLayout
from shared.upstream.http import HttpClient

#: What a download task's params may hold besides ``plan`` (``POST /downloads`` takes exactly these).
DOWNLOAD_FIELDS = ("url", "folder", "path_index", "subfolder", "filename", "file_id", "sha256", "overwrite")


class Submit(Protocol):
    """A dispatcher's ``submit``: create the task (or find the live one holding ``idem_key``) and enqueue it."""

    def __call__(self, kind: str, params: dict[str, Any], *,
                 idem_key: str | None = None) -> tuple[dict[str, Any], bool]: ...


def plan_for(settings: Settings, http: HttpClient, params: dict[str, Any]) -> Plan:
    """Resolve a download's params to its plan: the only place a download's URL is resolved."""
    return make_plan(settings, http, params["url"], folder=params.get("folder"), file_id=params.get("file_id"),
                     sha256=params.get("sha256"))


def idem_key(plan: Plan) -> str:
    return f"download:{plan.idem_key}"


def prepare_download(settings: Settings, layout: StoreLayout, params: dict[str, Any], *,
                     http: HttpClient | None = None) -> tuple[dict[str, Any], str]:
    """The task params (``plan`` included) and idempotency key for a download, every check done first: the
    fields, the artifact upstream, and the folder and name it will be saved under."""
    unknown = [k for k in params if k not in DOWNLOAD_FIELDS]
    if unknown:
        raise InvalidRequest(f"Unknown download field {unknown[0]!r}; a download takes {', '.join(DOWNLOAD_FIELDS)}.")
    if not isinstance(params.get("url"), str) or not params["url"]:
        raise InvalidRequest("Field 'url' is required: give the URL to download.")
    if params.get("filename") is not None:
        try:
            check_filename(params["filename"])
        except (InvalidPath, InvalidRequest) as exc:
            raise type(exc)(f"Field 'filename': {exc.message}", code=exc.code) from None
    plan = plan_for(settings, http or HttpClient(settings), params)
    # The folder and name upstream chose are checked too, before a task exists.
    target_path(layout, plan, params)
    return {**params, "plan": plan.to_dict()}, idem_key(plan)


def submit_download(settings: Settings, layout: StoreLayout, params: dict[str, Any], submit: Submit, *,
                    http: HttpClient | None = None) -> tuple[dict[str, Any], bool]:
    """Check and plan a download (``prepare_download``) and submit it; returns ``submit``'s (task, created)."""
    task_params, key = prepare_download(settings, layout, params, http=http)
    return submit("download", task_params, idem_key=key)
