"""Upstream API keys (Civitai, Hugging Face) kept server-side in ``settings.keys_file``: a JSON file with mode
0600, written atomically, read fresh on each use so every worker sharing the var dir sees a change at once.
Keys are never returned unmasked through the API and never logged; ``mask`` is the only way they are shown."""
from __future__ import annotations

import json
from pathlib import Path

from shared.config import Settings
from shared.errors import InvalidRequest
from shared.files import write_atomic

KEY_NAMES = ("civitai", "huggingface")
_MAX_KEY_LEN = 512


def mask(value: str | None) -> str | None:
    """``abcd****wxyz``; short keys show only stars so little of them leaks."""
    if not value:
        return None
    if len(value) < 12:
        return "****"
    return f"{value[:4]}****{value[-4:]}"


def clean_key(name: str, value: str | None) -> str | None:
    """``value`` trimmed, or None to clear; InvalidRequest for an unknown name or a value that cannot be a key."""
    if name not in KEY_NAMES:
        raise InvalidRequest(f"Unknown key {name!r}; use one of {', '.join(KEY_NAMES)}.")
    if value is None:
        return None
    value = value.strip()
    if len(value) > _MAX_KEY_LEN or any(c.isspace() for c in value):
        raise InvalidRequest("The key must be one token without spaces (at most 512 characters).")
    return value or None


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        return cls(settings.keys_file)

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if k in KEY_NAMES and isinstance(v, str) and v}

    def get(self, name: str) -> str | None:
        return self._load().get(name)

    def masked(self) -> dict[str, str | None]:
        keys = self._load()
        return {name: mask(keys.get(name)) for name in KEY_NAMES}

    def set(self, name: str, value: str | None) -> str | None:
        """Store (or clear with None/empty) a key; returns the masked value."""
        value = clean_key(name, value)
        keys = self._load()
        if value:
            keys[name] = value
        else:
            keys.pop(name, None)
        self._write(keys)
        return mask(keys.get(name))

    def _write(self, keys: dict[str, str]) -> None:
        write_atomic(self.path, json.dumps(keys), mode=0o600, fsync=True)
