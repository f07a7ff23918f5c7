"""Workflows handed over by a person: read every shape ComfyUI (and A1111, and Civitai AIR) writes, resolve each
model reference against the store's index, and report on which GPU hosts the workflow can run.

    formats.py    sniff the bytes: JSON / PNG / WebP / JPEG / text, size-capped → Payload
    graph.py      UI graphs (subgraphs, group nodes, bypass) and API prompts → Wanted
    loaders.py    the one table of model-loading nodes (node type, widget order, folder)
    prompts.py    ``embedding:name`` and ``<lora:name:weight>`` in prompt text
    a1111.py      A1111 ``parameters`` text (Model hash, Lora hashes, TI hashes, Civitai resources)
    air.py        Civitai AIR URNs
    refs.py       the types: Wanted (as the workflow states it) and Reference (the contract's answer)
    resolve.py    Wanted × lookup tables (shared/store/lookup.py) → present / ambiguous / mismatch / missing
    sources.py    Civitai by hash or version for missing references without a URL (rate-gated, cached)
    readiness.py  per-host visibility and readiness
    check.py      the whole check, for the API, the CLI and the benchmark

Nothing here imports Flask or Celery; nothing reads the store's disk."""
