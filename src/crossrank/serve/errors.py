"""The error contract: every client error is 4xx with ``{"error": str, "error_type": str}``."""

from __future__ import annotations

from typing import Any

# status -> error_type, following text-embeddings-inference's names where it has one
ERROR_TYPES = {
    400: "empty",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "validation",
    422: "invalid_request",
    499: "client_closed",
    429: "overloaded",
    503: "unhealthy",
}


class ApiError(Exception):
    """A request the server refuses; the message says what was expected and what came."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "error")
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.error_type}


def describe(value: Any) -> str:
    """A short description of what a client sent, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return f"array of {len(value)}"
    if isinstance(value, dict):
        return f"object with keys {sorted(value)[:5]}"
    return type(value).__name__
