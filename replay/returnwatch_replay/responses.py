"""HTTP answers of the replay mirror and its sites: a response, validators, conditional GETs.

What this module owns: ``Response`` (status, headers, body or a stream, a delay), the JSON and
text builders, ``with_validators()`` (ETag, Last-Modified and the RFC 9110 conditional-GET
answer) and ``OVERSIZE_BYTES``. It sits below ``mirror`` and ``sites``, which both use it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Just above the 5,000,000-byte cap in config/sources.yaml (the "oversize" fault).
OVERSIZE_BYTES = 5_250_000


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # When set, the body is streamed from this iterator without a Content-Length (the end of
    # the body is the end of the connection, as HTTP/1.0 allows).
    stream: Iterator[bytes] | None = None
    delay: float = 0.0


def json_response(status: int, payload: dict[str, Any]) -> Response:
    body = json.dumps(payload, indent=2).encode("utf-8") + b"\n"
    return Response(status, {"Content-Type": "application/json; charset=utf-8"}, body)


def text_response(status: int, text: str, content_type: str = "text/plain") -> Response:
    return Response(
        status, {"Content-Type": f"{content_type}; charset=utf-8"}, text.encode("utf-8")
    )


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def not_modified(request_headers: Any, etag: str, last_modified: dt.datetime | None) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match decides when present; If-Modified-Since otherwise."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since and last_modified is not None:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unreadable date is ignored, as the RFC says
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        # HTTP-dates have whole seconds.
        return last_modified.replace(microsecond=0) <= since
    return False


def with_validators(
    request_headers: Any, body: bytes, content_type: str, last_modified: dt.datetime | None
) -> Response:
    headers = {"Content-Type": content_type, "ETag": etag(body)}
    if last_modified is not None:
        headers["Last-Modified"] = http_date(last_modified)
    if not_modified(request_headers, headers["ETag"], last_modified):
        return Response(304, headers)
    return Response(200, headers, body)
