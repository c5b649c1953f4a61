"""Whether a file's figures are constructed, from the file's own record (never from where it
was fetched).

What this module owns: ``is_constructed(name, content)``, decided once when a file is parsed
and stored in ``raw.files.constructed`` (staging, marts, summary, ops page and alert filter
read it): the file's name contains ``_constructed`` or its content carries
``CONSTRUCTED_MARKERS``; and ``served_name``, the bounded, sanitised file name from a
response's ``Content-Disposition`` (a label, never a path).

Why the mirror's files are judged by name and content: docs/internals.md#provenance-constructed-files.
"""

from __future__ import annotations

import email.message
import email.utils
from urllib.parse import unquote, urlsplit

CONSTRUCTED_NAME = "_constructed"
CONSTRUCTED_MARKERS = (b"CUADRO CONSTRUIDO A MANO", b"CONSTRUCTED BY HAND")
# Longer headers are not read at all; longer names are cut (file systems stop at 255 bytes).
MAX_DISPOSITION_CHARS = 2000
MAX_SERVED_NAME_CHARS = 255


def file_name(url: str) -> str:
    """The last path segment of ``url`` (``manual:<path>`` included), query removed."""
    if url.startswith("manual:"):
        path = url[len("manual:") :]
    else:
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if "=" in parts.query else "")
    return unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])


def served_name(content_disposition: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header gives (RFC 6266), as a bare label.

    ``filename*=`` (RFC 8187 encoding) wins over ``filename=``, as RFC 6266 section 4.3 says;
    the standard library's MIME parser reads both. Any directory part (``/`` or ``\\``) is
    dropped, control characters (NUL included) removed, the result cut to 255 characters; a
    header that is missing, overlong or names nothing usable gives None.
    """
    if not content_disposition or len(content_disposition) > MAX_DISPOSITION_CHARS:
        return None
    message = email.message.Message()
    try:
        message["Content-Disposition"] = content_disposition
        params = message.get_params(header="content-disposition") or []
    except (ValueError, TypeError, LookupError):
        return None
    plain = extended = None
    for key, value in params[1:]:  # the first is the disposition type
        if key.lower() != "filename":
            continue
        if isinstance(value, tuple):  # filename*=charset'lang'%xx
            try:
                extended = email.utils.collapse_rfc2231_value(value)
            except (LookupError, UnicodeError):
                continue
        elif plain is None:
            plain = email.utils.unquote(value)
    name = extended if extended is not None else plain
    if not name:
        return None
    name = "".join(ch for ch in name if ch.isprintable())
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return name[:MAX_SERVED_NAME_CHARS] or None


def is_constructed(
    url: str, content: bytes | None = None, *, served_name: str | None = None
) -> bool:
    """True when the file's name (in its URL or as served) or its content says its figures
    were made by hand."""
    names = (file_name(url), served_name or "")
    if any(CONSTRUCTED_NAME in name.lower() for name in names):
        return True
    return content is not None and any(m in content for m in CONSTRUCTED_MARKERS)


__all__ = ["CONSTRUCTED_MARKERS", "CONSTRUCTED_NAME", "file_name", "is_constructed", "served_name"]
