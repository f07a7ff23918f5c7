"""The verify job: re-hash model files and compare them with what the store knows (``job.py``, ``run_verify``)."""
