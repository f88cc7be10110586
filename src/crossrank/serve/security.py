"""Who may call the server: API keys, the ``Host`` it answers to, JSON-only bodies, CORS.

A reranker on localhost is reachable from every web page its user opens: a page can POST a
``text/plain`` or form body without a CORS preflight, and a DNS-rebinding page can read the
answers. So POST bodies must be declared JSON (a cross-origin page cannot do that without a
preflight that only ``--cors-origin`` lets through), the ``Host`` header must name this
server, and with keys configured every route but ``/health`` needs ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from crossrank.serve.errors import ApiError

KEYS_ENV = "CROSSRANK_API_KEYS"  # comma-separated
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
OPEN_PATHS = ("/health",)  # load balancers probe it without credentials


@dataclass(frozen=True)
class AccessPolicy:
    """``api_keys`` empty: no key needed; ``allowed_hosts`` ``("*",)``: any ``Host``."""

    api_keys: frozenset[str] = frozenset()
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    cors_origins: tuple[str, ...] = ()
    metrics_public: bool = False  # /metrics without a key (for scrapers that send none)

    def check(self, method: str, path: str, headers) -> None:
        """Raise :class:`ApiError` for a request this policy refuses."""
        host_allowed(headers.get("host"), self.allowed_hosts)
        if method == "OPTIONS":  # CORS preflights carry no credentials
            return
        public = OPEN_PATHS + (("/metrics",) if self.metrics_public else ())
        if self.api_keys and path not in public:
            check_key(headers.get("authorization"), self.api_keys)
        if method == "POST":
            check_json(headers.get("content-type"))


def default_hosts(bind: str) -> tuple[str, ...]:
    """Loopback names when bound to a loopback address (DNS rebinding), else any host."""
    try:
        loopback = bind == "localhost" or ipaddress.ip_address(bind).is_loopback
    except ValueError:
        loopback = False
    return LOOPBACK_NAMES if loopback else ("*",)


def _hostname(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str | None, allowed: tuple[str, ...]) -> None:
    if "*" in allowed:
        return
    name = _hostname(host or "").lower()
    if name not in allowed:
        raise ApiError(
            421,
            f"expected a Host header naming this server ({', '.join(allowed)}), got "
            f"{host!r}; add it with --allowed-host",
            "misdirected_request",
        )


def check_key(authorization: str | None, keys: frozenset[str]) -> None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    ok = scheme.lower() == "bearer" and any(
        hmac.compare_digest(token.encode(), k.encode()) for k in keys
    )
    if not ok:
        got = "none" if not authorization else f"a {scheme or 'malformed'} credential"
        raise ApiError(
            401,
            f"expected 'Authorization: Bearer <key>' with a key this server accepts, got {got}",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )


def check_json(content_type: str | None) -> None:
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise ApiError(
            415,
            f"expected Content-Type: application/json, got {content_type or 'none'}",
            "unsupported_media_type",
        )


def load_keys(path: str | None) -> frozenset[str]:
    """Keys from ``path`` (one per line, ``#`` comments) and ``$CROSSRANK_API_KEYS``."""
    keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",")]
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(
                f"{path}: expected a readable file of API keys ({exc.strerror})"
            ) from None
        keys += [line.split("#", 1)[0].strip() for line in lines]
        if not any(keys):
            raise ValueError(f"{path}: expected at least one API key, got none")
    return frozenset(k for k in keys if k)
