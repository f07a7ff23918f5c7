"""The library's daily work on models already in the store: edits written back to ``NAME.md`` (name, trigger
words, base model, tags, favorite), the per-root trash with undo, and the description rendered for a browser.
Services only: the API and the CLI call them; they know nothing of Flask or Celery."""
