"""What a file's bytes are: hashes, model format checks (safetensors, GGUF, pickle), cover images embedded in a
model, preview decoding and thumbnails. Knows nothing of the store's layout or of upstream sites."""
