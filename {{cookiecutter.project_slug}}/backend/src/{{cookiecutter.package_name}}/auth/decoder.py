"""PyJWT with its base64url segment check compiled: the same tokens accepted, in C.

PyJWT 2.15 checks each byte of each segment against the alphabet in a Python
generator, then re-encodes the segment to refuse non-canonical ones: for an RS256
token (about 700 bytes) that was half of `jwt.decode`'s CPU time, more than the RSA
signature check itself (profiled with cProfile and callgrind; README, "Authentication's
cost"). One regular expression accepts exactly the segments PyJWT accepts
(tests/unit/test_token_decoder.py compares both over hostile segments), then the
standard library decodes. Every other check stays PyJWT's.

This overrides PyJWT's private `PyJWS._decode_base64url_segment` in subclasses this
module owns (no library global is touched): pyproject.toml pins PyJWT to the 2.x
releases from 2.15.1 (2.15.0 refused the '=' padding accepted here), and the
comparison test fails if a release renames or changes it.
"""

from __future__ import annotations

import re

import jwt
from jwt.utils import base64url_decode

# Whole quartets, then optionally 2 characters (the last with its 4 unused bits zero,
# padded with "==" or not) or 3 (the last with its 2 unused bits zero, "=" or not):
# canonical base64url, as PyJWS._decode_base64url_segment accepts it. The quartets
# are matched possessively (`*+`): the tail never holds a whole quartet, so giving
# one back cannot help, and a junk last byte is refused without backtracking.
_SEGMENT = re.compile(
    rb"(?:[A-Za-z0-9_-]{4})*+"
    rb"(?:[A-Za-z0-9_-][AQgw](?:==)?|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]=?)?"
)


class CompiledSegmentJWS(jwt.PyJWS):
    """PyJWS whose segment check is one compiled regular expression."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        if _SEGMENT.fullmatch(segment) is None:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return base64url_decode(segment)


class TokenDecoder(jwt.PyJWT):
    """jwt.PyJWT over CompiledSegmentJWS: decode() checks signature and claims as
    jwt.decode does; get_unverified_header() reads the header as jwt's does."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = CompiledSegmentJWS(options=self._get_sig_options())

    def get_unverified_header(self, token: str) -> dict[str, object]:
        return self._jws.get_unverified_header(token)
