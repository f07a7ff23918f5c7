"""One action on many models as one task (``job.py``): a selection, or everything a search matches."""
