"""The one place that builds settings: defaults, then ``depot.yaml`` (``DEPOT_CONFIG``), then the environment,
then explicit overrides. Every process (web, workers, beat, Flower, CLI) builds its settings here, so they all
agree on the broker's visibility timeout and on every other knob.

Every path setting is made absolute here, once: a relative one in the environment (or the default ``var/...``)
against the working directory of the process that reads the settings, a relative one in the ``DEPOT_CONFIG``
file against that file's folder. No other module ever sees a relative path, so no code can read one against a
folder the user never meant (Flask's ``send_file`` resolves relative paths against the app's package)."""
from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.redis_url import RedisTarget, parse_redis_url


class SettingsError(ValueError):
    """One or more settings are invalid; the message names each bad variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

#: Per job kind: (soft, hard) time limits in seconds.
DEFAULT_TIME_LIMITS_S: dict[str, tuple[int, int]] = {
    "download": (4 * 3600, 4 * 3600 + 300),
    "scan": (2 * 3600, 2 * 3600 + 300),
    "verify": (4 * 3600, 4 * 3600 + 300),
    "preview": (1800, 1900),
    "workflow": (4 * 3600, 4 * 3600 + 300),  # it waits on its downloads
    "bulk": (2 * 3600, 2 * 3600 + 300),
    "maintenance": (300, 330),
}


@dataclass(frozen=True)
class Settings:
    """Every knob of Model Depot. Field name = lower-case environment name without ``DEPOT_``."""

    redis_url: str | None = None  #: external Redis; unset = embedded one started by ``depot up``
    embedded_redis_port: int = 6389
    store: Path = Path("var/models")
    var_dir: Path = Path("var")
    extra_model_paths: tuple[Path, ...] = ()
    #: the YAML file these settings were read from (``DEPOT_CONFIG``), if any
    config: Path | None = None
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0] or "localhost")
    api_token: str | None = None
    read_token_required: bool = False
    civitai_url: str = "https://civitai.com"
    hf_endpoint: str = "https://huggingface.co"
    allow_private_urls: bool = False
    web_port: int = 8800
    web_bind: str = "127.0.0.1"
    flower_port: int = 5555
    flower_auth: str | None = None
    max_body_bytes: int = 1024 * 1024
    #: finished task records expire after this many seconds
    task_ttl_s: int = 30 * 86400
    #: a running task's lease; heartbeats renew it every second (or lease/4 if shorter)
    lease_s: float = 60.0
    #: beat runs the reaper this often
    reaper_interval_s: float = 30.0
    #: progress events at most this often per task
    progress_interval_s: float = 1.0
    #: per-task event stream length (approximate trim)
    events_maxlen: int = 500
    #: WebSocket relay: events buffered per client before a slow client is dropped with a resync
    ws_queue_max: int = 2000
    #: WebSocket keep-alive ping interval (seconds; 0 = off)
    ws_ping_s: float = 25.0
    #: broker redelivery after this long unacked; must exceed every hard time limit
    visibility_timeout_s: int = 6 * 3600
    time_limits_s: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_TIME_LIMITS_S))
    worker_concurrency: int = 2
    download_concurrency: int = 2
    soft_shutdown_s: int = 30
    #: periodic quick scan; 0 = off
    scan_interval_s: float = 0.0
    #: files larger than this are hashed lazily by a quick scan (a full scan hashes everything)
    lazy_hash_bytes: int = 1024**3
    #: processes that read new directories' files and sidecars in a big scan (0 = one per CPU; 1 = inline)
    scan_processes: int = 0
    #: the thumbnail cache of each host is trimmed (least recently used first) above this size; 0 = no limit
    thumbs_max_bytes: int = 1024**3
    #: Civitai NSFW level ceiling for previews (1 PG, 2 PG-13, 4 R, 8 X, 16 XXX)
    nsfw_level: int = 1
    #: partial downloads older than this with no lease are removed by the hygiene job
    stale_partial_s: float = 24 * 3600.0
    #: stall watchdog: no bytes for this long means reconnect
    stall_s: float = 30.0
    #: a download whose host has not answered once by then fails (a wrong or dead link) instead of retrying
    unreachable_s: float = 30.0
    download_retries: int = 8
    chunk_bytes: int = 4 * 1024 * 1024
    #: connections one download opens when the server takes ranges (1 = a single stream)
    download_connections: int = 8
    #: a download is cut in pieces of this size (a file under two of them stays a single stream)
    segment_bytes: int = 16 * 1024 * 1024
    #: connections all workers of all hosts together keep open to one server (a Redis semaphore)
    origin_connections: int = 16
    #: hashes computed inline while downloading (the rest can be added later by verify --mode all)
    download_hashes: tuple[str, ...] = ("SHA256", "BLAKE3", "CRC32", "AutoV1", "AutoV2", "AutoV3")
    #: how often the beat asks Civitai for newer versions of the models that came from there (0 = never)
    update_check_s: float = 86400.0
    #: the largest model file a browser may upload
    upload_max_bytes: int = 256 * 1024**3
    #: days a deleted model stays restorable in its root's trash (0 = emptied at the next hourly pass)
    trash_days: float = 7.0
    #: extra task modules a worker loads (extensions and the test suite)
    task_modules: tuple[str, ...] = ()
    #: per-host mount point of the store, for ``extra_model_paths.yaml`` (``host=/path``)
    host_mounts: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0"

    @property
    def redis_target(self) -> RedisTarget:
        """``effective_redis_url`` read once: a plain Redis or a Sentinel deployment (``shared/redis_url.py``)."""
        return parse_redis_url(self.effective_redis_url)

    @property
    def keys_file(self) -> Path:
        return self.var_dir / "keys.json"

    @property
    def thumbs_dir(self) -> Path:
        return self.var_dir / "thumbs"

    @property
    def effective_flower_auth(self) -> str | None:
        if self.flower_auth:
            return self.flower_auth
        return f"depot:{self.api_token}" if self.api_token else None

    def __post_init__(self) -> None:
        # Whatever built this object (load_settings, a test, replace()), a relative path left here would be read
        # against the folder of whichever code opens it: resolve it now, against the working directory.
        for name in ("store", "var_dir", "config"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, absolute_path(value))
        object.__setattr__(self, "extra_model_paths", tuple(absolute_path(p) for p in self.extra_model_paths))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


#: Settings that name files or folders on this machine.
PATH_FIELDS = ("store", "var_dir", "extra_model_paths", "config")


def absolute_path(path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> Path:
    """``path`` made absolute against ``base`` (default: the working directory) and normalised lexically.
    Symbolic links are kept as named: a store reached through a link stays under the name the user gave."""
    return Path(os.path.abspath(os.path.join(base, path) if base is not None else path))


def path_environment(settings: Settings) -> dict[str, str]:
    """The path settings as absolute environment values, for a child process that may start in another folder:
    the environment wins over the file, so the child uses exactly the paths its parent resolved."""
    env = {"DEPOT_STORE": str(settings.store), "DEPOT_VAR_DIR": str(settings.var_dir),
           "DEPOT_EXTRA_MODEL_PATHS": os.pathsep.join(str(p) for p in settings.extra_model_paths)}
    if settings.config is not None:
        env["DEPOT_CONFIG"] = str(settings.config)
    return env


def _parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}: expected one of 1/0, true/false, yes/no, on/off, got {raw!r}")


def _coerce(name: str, f: dataclasses.Field[Any], raw: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if raw is None:
        if kind.startswith("tuple[Path"):
            return ()
        if kind.startswith("Path") and not kind.endswith("None"):
            raise ValueError(_EMPTY_PATH)
        return None
    if name == "time_limits_s":
        if isinstance(raw, str):
            raw = yaml.safe_load(raw)
        out = dict(DEFAULT_TIME_LIMITS_S)
        for k, v in dict(raw).items():
            soft, hard = (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v) + 60)
            out[str(k)] = (soft, hard)
        return out
    if name == "host_mounts":
        if isinstance(raw, str):
            pairs = [p for p in raw.split(",") if p.strip()]
            return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
        return {str(k): str(v) for k, v in dict(raw).items()}
    if kind.startswith("bool"):
        return _parse_bool(name, raw)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    if kind.startswith("Path"):
        text = str(raw).strip()
        if not text:
            if kind.endswith("None"):
                return None
            raise ValueError(_EMPTY_PATH)
        return Path(os.path.expandvars(os.path.expanduser(text)))
    if kind.startswith("tuple[Path"):
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(os.pathsep)
        return tuple(Path(os.path.expandvars(os.path.expanduser(str(p).strip()))) for p in items if str(p).strip())
    if kind.startswith("tuple[str"):
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return tuple(str(p).strip() for p in items if str(p).strip())
    text = str(raw)
    return text if text != "" or not kind.endswith("None") else None


_EMPTY_PATH = "empty; unset it for the default, or name a folder"

#: Environment names that differ from ``DEPOT_<FIELD>``.
_ENV_ALIASES = {"hf_endpoint": "HF_ENDPOINT"}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, ``DEPOT_CONFIG`` YAML, the environment and ``overrides``.

    Raises:
        SettingsError: naming every invalid value.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    config_path = env.get("DEPOT_CONFIG")
    errors: list[str] = []
    from_file: set[str] = set()
    if config_path:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError("top level must be a mapping")
            raw.update({str(k).lower(): v for k, v in loaded.items()})
            raw.pop("config", None)  # the file names no other file to read settings from
            from_file = set(raw)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            errors.append(f"DEPOT_CONFIG={config_path}: {exc}")
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in fields:
        env_name = _ENV_ALIASES.get(name, f"DEPOT_{name.upper()}")
        if env_name in env:
            raw[name] = env[env_name]
            from_file.discard(name)
    raw.update(overrides)
    from_file -= set(overrides)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in fields:
            if name in overrides:
                errors.append(f"unknown setting {name!r}")
            continue
        try:
            typed = name in overrides and not isinstance(value, str)
            values[name] = value if typed else _coerce(name, fields[name], value)
        except (TypeError, ValueError) as exc:
            errors.append(f"DEPOT_{name.upper()}={value!r}: {exc}")
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    if config_path:
        # A path written in the file means the same wherever a process starts: it is relative to the file.
        folder = os.path.dirname(os.path.abspath(config_path))
        for name in from_file.intersection(PATH_FIELDS):
            value = values[name]
            values[name] = (tuple(absolute_path(p, folder) for p in value) if isinstance(value, tuple)
                            else absolute_path(value, folder))
    settings = Settings(**values)
    _validate(settings)
    return settings


def _redis_url_problem(s: Settings) -> str | None:
    if s.redis_url is None:
        return None
    try:
        parse_redis_url(s.redis_url)
    except ValueError as exc:
        return f"DEPOT_REDIS_URL: {exc}"  # not echoed: it may hold a password
    return None


def _validate(s: Settings) -> None:
    problems = []
    if url_problem := _redis_url_problem(s):
        problems.append(url_problem)
    longest_hard = max(hard for _soft, hard in s.time_limits_s.values())
    if s.visibility_timeout_s <= longest_hard:
        problems.append(
            f"DEPOT_VISIBILITY_TIMEOUT_S={s.visibility_timeout_s} must exceed the longest hard time limit "
            f"({longest_hard} s)"
        )
    if not s.host or any(c in s.host for c in " /\\:@"):
        problems.append(f"DEPOT_HOST={s.host!r}: use letters, digits, '-', '_' or '.'")
    known_hashes = {"SHA256", "BLAKE3", "CRC32", "AutoV1", "AutoV2", "AutoV3"}
    if "SHA256" not in s.download_hashes or not set(s.download_hashes) <= known_hashes:
        problems.append(f"DEPOT_DOWNLOAD_HASHES={','.join(s.download_hashes)}: must include SHA256 (it verifies "
                        f"every download) and only name {', '.join(sorted(known_hashes))}")
    if s.thumbs_max_bytes < 0:
        problems.append(f"DEPOT_THUMBS_MAX_BYTES={s.thumbs_max_bytes}: use 0 (no limit) or a size in bytes")
    if not 0 <= s.scan_processes <= 256:
        problems.append(f"DEPOT_SCAN_PROCESSES={s.scan_processes}: use 0 (one per CPU) to 256")
    if s.lease_s < 1:
        problems.append("DEPOT_LEASE_S must be at least 1 second")
    if not 0 < s.web_port < 65536:
        problems.append(f"DEPOT_WEB_PORT={s.web_port} is not a port")
    # ``host:folder=`` (empty) says the host lacks that folder; every path given must be absolute.
    relative_mounts = [f"{h}={m}" for h, m in s.host_mounts.items()
                       if not os.path.isabs(m) and not (":" in h and not m.strip())]
    if relative_mounts:
        problems.append(f"DEPOT_HOST_MOUNTS: {', '.join(relative_mounts)}: give the absolute path where each host "
                        "mounts the store (it is a path on that host, not on this one), or an empty value after "
                        "host:folder= for a folder the host lacks")
    if s.flower_auth and ":" not in s.flower_auth:
        problems.append("DEPOT_FLOWER_AUTH must be user:password")
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
