"""Metadata for models that lack it, found on Civitai by their SHA256 (the scan's ``fetch_metadata`` step)."""
