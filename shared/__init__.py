"""Model Depot core: everything the web process and the workers share (no Flask, no Celery)."""
