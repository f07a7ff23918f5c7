"""The error hierarchy: each error has a stable snake_case ``code``, an HTTP status and whether retrying may help.
The same codes appear in API error bodies and in a failed task's ``error``."""
from __future__ import annotations

from typing import Any


class DepotError(Exception):
    code = "internal_error"
    http_status = 500
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 retry_after: float | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.retry_after = retry_after
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(DepotError):
    code, http_status = "invalid_request", 400


class InvalidPath(DepotError):
    code, http_status = "invalid_path", 400


class Unauthorized(DepotError):
    code, http_status = "unauthorized", 401


class NotFound(DepotError):
    code, http_status = "not_found", 404


class Conflict(DepotError):
    code, http_status = "conflict", 409


class IllegalTransition(DepotError):
    code, http_status = "illegal_transition", 409


class StaleAttempt(DepotError):
    """A write from an attempt that no longer owns the task (fencing)."""

    code, http_status = "stale_attempt", 409


class StoreUnavailable(DepotError):
    code, http_status, retryable = "redis_unavailable", 503, True


class UpstreamError(DepotError):
    """An upstream (Civitai, Hugging Face, a direct link) failed; ``retryable`` says whether to try again."""

    code, http_status = "upstream_error", 502


class Transient(UpstreamError):
    code, retryable = "upstream_unavailable", True


class RateLimited(Transient):
    code, http_status = "rate_limited", 429


class UpstreamRefused(UpstreamError):
    """The upstream answered, and asking again will get the same answer until the user changes something (a key,
    an access request, the link): a download stops here rather than guessing."""

    code, http_status = "upstream_refused", 403


class GatedRepo(UpstreamRefused):
    code, http_status = "gated_repo", 403


class LoginRequired(UpstreamRefused):
    code, http_status = "login_required", 401


class Archived(UpstreamRefused):
    code, http_status = "archived", 410


class EarlyAccess(UpstreamError):
    code, http_status = "early_access", 403


class BadContent(UpstreamError):
    """The bytes that arrived are not the model that was asked for; nothing of them may stay in the store."""

    code, http_status = "invalid_model", 502


class HtmlInsteadOfModel(BadContent):
    code = "html_instead_of_model"


class HashMismatch(BadContent):
    code = "hash_mismatch"


class DiskFull(DepotError):
    code, http_status = "disk_full", 507


class JobInterrupted(Exception):
    """Raised inside a job when the user asked to stop it; carries the state to end in."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def error_dict(exc: BaseException) -> dict[str, Any]:
    """The ``{"code","message"}`` stored in a failed task."""
    if isinstance(exc, DepotError):
        return exc.to_dict()
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
