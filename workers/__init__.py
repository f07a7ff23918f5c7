"""Celery side of Model Depot: the app built from settings, thin task adapters, dispatch and maintenance."""
