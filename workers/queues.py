"""Queue names and which queue each job kind goes to."""
from __future__ import annotations

DOWNLOADS, SCAN, VERIFY, PREVIEWS, MAINTENANCE = "downloads", "scan", "verify", "previews", "maintenance"
SHARED_QUEUES: tuple[str, ...] = (DOWNLOADS, SCAN, VERIFY, PREVIEWS, MAINTENANCE)
KIND_QUEUE: dict[str, str] = {"download": DOWNLOADS, "scan": SCAN, "verify": VERIFY, "preview": PREVIEWS}


def host_queue(host: str) -> str:
    """Host-affine work (e.g. a GPU host regenerating its own previews) goes here."""
    return f"host.{host}"


def default_queues(host: str) -> list[str]:
    return [*SHARED_QUEUES, host_queue(host)]
