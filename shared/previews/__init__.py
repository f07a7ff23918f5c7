"""The preview job: give models a picture from their own file or Civitai (``job.py``, ``run_previews``)."""
