"""``DEPOT_REDIS_URL`` read once into a :class:`RedisTarget`: a plain Redis URL, or the Redis Sentinel form

    sentinel://[user:password@]h1:26379,h2:26379,h3:26379/<master name>[/<db>][?sentinel_password=...]

``user:password`` are the credentials of the data nodes (the master and its replicas: what ``requirepass`` or an
ACL user guards). The sentinels often have no password, or a different one, so theirs is given apart as the query
parameters ``sentinel_password`` (and ``sentinel_username``). Percent-escape ``@ : / , ? & %`` in either. Every
process builds its clients (redis-py, the Celery broker and result backend, Flower) from this one object, so they
all follow the same master through a failover.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

SENTINEL_PORT = 26379
_PLAIN_SCHEMES = ("redis", "rediss", "unix")
_SENTINEL_QUERY = ("sentinel_password", "sentinel_username")


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is. ``sentinels`` is empty for a plain URL (then ``url`` is handed to redis-py as it is)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def sentinel_auth(self) -> dict[str, str]:
        """Connection arguments for the sentinels themselves (not for the master)."""
        auth = {}
        if self.sentinel_username:
            auth["username"] = self.sentinel_username
        if self.sentinel_password:
            auth["password"] = self.sentinel_password
        return auth

    def master_auth(self) -> dict[str, str]:
        """Connection arguments for the master (and replicas)."""
        auth = {}
        if self.username:
            auth["username"] = self.username
        if self.password:
            auth["password"] = self.password
        return auth

    def redacted(self) -> str:
        """The URL with its passwords masked, for logs and banners."""
        if not self.is_sentinel:
            parts = urlsplit(self.url)
            if parts.password is None:
                return self.url
            netloc = parts.netloc.rpartition("@")
            user = unquote(parts.username or "")
            return parts._replace(netloc=f"{user}:****@{netloc[2]}").geturl()
        cred = f"{quote(self.username or '', safe='')}:****@" if self.password else \
            (f"{quote(self.username, safe='')}@" if self.username else "")
        hosts = ",".join(_host_port(h, p) for h, p in self.sentinels)
        query = "?sentinel_password=****" if self.sentinel_password else ""
        return f"sentinel://{cred}{hosts}/{quote(self.master_name, safe='')}/{self.db}{query}"


def parse_redis_url(url: str) -> RedisTarget:
    """Read a Redis or Redis Sentinel URL.

    Raises:
        ValueError: saying what is wrong with it and what the form is.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _PLAIN_SCHEMES:
        return RedisTarget(url=url)
    if scheme != "sentinel":
        raise ValueError("use redis://[user:password@]host:port/db, rediss://…, unix://…, or "
                         "sentinel://[user:password@]h1:26379,h2:26379,h3:26379/<master name>/<db>")
    rest = url[len("sentinel://"):]
    rest, _, query = rest.partition("?")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise ValueError("a sentinel URL has no #fragment")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon and secret else None
    sentinels = tuple(_parse_host(h) for h in hostlist.split(",") if h.strip())
    if not sentinels:
        raise ValueError("name at least one sentinel: sentinel://h1:26379,h2:26379,h3:26379/<master name>/<db>")
    segments = [unquote(s) for s in path.split("/")] if path else []
    if not segments or not segments[0]:
        raise ValueError("give the master name the sentinels monitor after the hosts: "
                         "sentinel://h1:26379,h2:26379/<master name>/<db>")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError(f"after the master name only a database number may follow (…/{segments[0]}/0), "
                         f"got {path!r}")
    options = parse_qs(query, keep_blank_values=True, strict_parsing=False) if query else {}
    unknown = sorted(set(options) - set(_SENTINEL_QUERY))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; a sentinel URL accepts "
                         f"{' and '.join(_SENTINEL_QUERY)}")
    return RedisTarget(
        url=url, sentinels=sentinels, master_name=segments[0], db=int(segments[1]) if len(segments) == 2 else 0,
        username=username, password=password,
        sentinel_username=(options.get("sentinel_username") or [""])[-1] or None,
        sentinel_password=(options.get("sentinel_password") or [""])[-1] or None,
    )


def _parse_host(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [ipv6]:port
        host, _, tail = text[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"sentinel {text!r} has no host name")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"sentinel {text!r}: {port_text!r} is not a port")
    return host, int(port_text) if port_text else SENTINEL_PORT


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
