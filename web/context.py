"""What request handlers need, one per web process: built by the app factory (``app.extensions['depot']``), the
per-process parts on first use."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from celery import Celery
from flask import current_app

from shared.config import Settings
from shared.media.thumbs import Thumbnailer
from shared.services import Services
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from shared.store.lookup import ModelLookup
from shared.uploads.uploads import Uploads
from web.relay import Relay, subscriber_client
from workers.dispatch import Dispatcher


@dataclass(eq=False)
class WebContext:
    settings: Settings
    services: Services
    celery: Celery
    dispatcher: Dispatcher
    #: The WebSocket relay; None until the first WebSocket starts it (``start_relay``).
    relay: Relay | None = None
    _relay_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # Built on first use, as a request needs them (the layout creates the store's default folders).

    @cached_property
    def layout(self) -> StoreLayout:
        """The store's folder layout."""
        return StoreLayout.from_settings(self.settings)

    @cached_property
    def index(self) -> StoreIndex:
        """The model index; it caches search rows between requests."""
        return StoreIndex(self.services.redis, self.settings, self.layout)

    @cached_property
    def lookup(self) -> ModelLookup:
        """The workflow check's lookup tables, kept current from the index's change log."""
        return ModelLookup(self.services.redis)

    @cached_property
    def uploads(self) -> Uploads:
        """Browser uploads: records in Redis, each upload's hasher in this process."""
        return Uploads(self.services.redis, self.settings, self.index)

    @cached_property
    def thumbnailer(self) -> Thumbnailer:
        return Thumbnailer(self.settings.thumbs_dir, self.settings.thumbs_max_bytes)

    def start_relay(self) -> Relay:
        """The process's relay, created by the first WebSocket: after any fork, so that its subscriber thread
        belongs to the process that serves the sockets."""
        with self._relay_lock:
            if self.relay is None:
                url = self.settings.effective_redis_url
                self.relay = Relay(lambda: subscriber_client(url), queue_max=self.settings.ws_queue_max)
            return self.relay


def depot() -> WebContext:
    return current_app.extensions["depot"]
