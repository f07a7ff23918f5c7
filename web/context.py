"""What request handlers need, built once per web process by the app factory (``app.extensions['depot']``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from flask import current_app

from shared.config import Settings
from shared.services import Services
from workers.dispatch import Dispatcher


@dataclass
class WebContext:
    settings: Settings
    services: Services
    celery: Celery
    dispatcher: Dispatcher
    extras: dict[str, Any]


def depot() -> WebContext:
    return current_app.extensions["depot"]
