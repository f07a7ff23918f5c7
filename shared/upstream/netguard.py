"""Refuse to fetch from loopback, private, link-local and other non-public addresses (server-side request
forgery: a download URL must not reach the Redis port or a cloud metadata service). Checked for the first URL
and again for every redirect hop, unless ``settings.allow_private_urls`` (tests, LAN mirrors)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from shared.errors import DepotError, NotFound


class PrivateAddressRefused(DepotError):
    code, http_status = "private_address_refused", 400


def _is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not (addr.is_multicast or addr.is_reserved)


def check_url(url: str, allow_private: bool) -> None:
    """Raise PrivateAddressRefused when ``url``'s host resolves to any non-public address."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise PrivateAddressRefused(f"The URL {url!r} has no host name.")
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotFound(f"Cannot resolve host {host!r} ({exc}). Check the URL and this host's DNS.") from None
    bad = sorted({str(info[4][0]) for info in infos if not _is_public(str(info[4][0]))})
    if bad:
        raise PrivateAddressRefused(
            f"Refusing to download from {host} ({', '.join(bad)}): it is a loopback, private or link-local "
            "address. Set DEPOT_ALLOW_PRIVATE_URLS=1 if this is a trusted LAN mirror.")
