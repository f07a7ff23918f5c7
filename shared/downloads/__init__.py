"""Downloads from Civitai, Hugging Face and direct links: resolve what a pasted URL means, transfer it with
resume and inline hashing, refuse anything that is not a model, publish atomically, exactly once across hosts."""
