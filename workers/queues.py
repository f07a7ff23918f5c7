"""Queue names and which queue each job kind goes to."""
from __future__ import annotations

DOWNLOADS, SCAN, VERIFY, PREVIEWS, MAINTENANCE = "downloads", "scan", "verify", "previews", "maintenance"
SHARED_QUEUES: tuple[str, ...] = (DOWNLOADS, SCAN, VERIFY, PREVIEWS, MAINTENANCE)
#: Workflow tasks only wait on their downloads: they run on a node of their own with a thread pool
#: (``workflow_node``), so a waiting workflow never holds the process slot one of its downloads needs.
WORKFLOWS = "workflows"
#: A bulk action works on the store as a scan does, so it waits behind scans rather than beside downloads.
KIND_QUEUE: dict[str, str] = {"download": DOWNLOADS, "scan": SCAN, "verify": VERIFY, "preview": PREVIEWS,
                              "workflow": WORKFLOWS, "bulk": SCAN}


def host_queue(host: str) -> str:
    """Host-affine work (e.g. a GPU host regenerating its own previews) goes here."""
    return f"host.{host}"


def default_queues(host: str) -> list[str]:
    return [*SHARED_QUEUES, host_queue(host)]
