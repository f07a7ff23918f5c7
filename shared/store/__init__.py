"""The model store: ComfyUI folder layout, path validation, sidecars, the Redis index and the scan job."""
