"""Where webhooks may post: `http` or `https` URLs whose host resolves to public addresses
only — no loopback, private, link-local, shared (CGNAT), multicast or reserved ones — unless
`WEBHOOK_ALLOW_PRIVATE_TARGETS` says so. Checked when a webhook is saved and again at every
delivery (a name can be pointed somewhere else after it was saved)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(Exception):
    """The URL may not be posted to; the message says why."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a URL webhooks may use, as far as its text tells."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused("has no host")
    if parts.username or parts.password:
        raise TargetRefused("must not carry a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_target(url: str, allow_private: bool, *, must_resolve: bool = True) -> None:
    """Refuse `url` unless every address its host resolves to may be posted to. A host that
    does not resolve is refused too, unless `must_resolve` is false (a webhook may be saved
    before its receiver's name exists; its deliveries check again)."""
    host, port = check_url(url)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # (a name IDNA cannot encode is a UnicodeError)
        if not must_resolve:
            return
        raise TargetRefused(f"the host {host!r} does not resolve: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        if refused_address(address):
            raise TargetRefused(
                f"the host {host!r} resolves to {address}, a loopback, private or link-local address"
            )
