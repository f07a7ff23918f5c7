"""The sites models come from: the guarded HTTP client (every hop checked by ``netguard``, keys sent to their own
host only), what a pasted URL names, the Civitai and Hugging Face APIs (with the Civitai rate gate every worker
shares), the stored API keys and the choice of a Civitai preview image. Knows nothing of the store."""
