"""What can be wrong with a file someone hands over as a workflow; each is a clear 4xx with a stable code."""
from __future__ import annotations

from shared.errors import DepotError


class WorkflowFileError(DepotError):
    """The file holds no workflow this package can read (the message says what it is and what to give)."""

    code, http_status = "not_a_workflow", 400


class FileTooLarge(WorkflowFileError):
    code, http_status = "file_too_large", 413


class UnsupportedFile(WorkflowFileError):
    code, http_status = "unsupported_file", 415


class MalformedWorkflow(WorkflowFileError):
    code, http_status = "malformed_workflow", 400
