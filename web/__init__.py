"""Model Depot web process: the Flask app factory, the JSON API, the WebSocket relay and the dashboard."""
from web.app import create_app

__all__ = ["create_app"]
