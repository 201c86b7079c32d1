"""Why a credential was refused. The reason is for the log; callers get one answer."""

from __future__ import annotations


class InvalidTokenError(Exception):
    """The token is missing, malformed, expired, for someone else or badly signed.

    `reason` names the failed check for the service's own log; it never holds the
    token, and the HTTP answer does not repeat it (RFC 6750 §3.1 gives one error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySetError(Exception):
    """The provider's key set could not be fetched or read."""
