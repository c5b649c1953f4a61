"""Whether a file's figures are constructed, from the file's own record (never from where it
was fetched).

What this module owns: ``is_constructed(name, content)``, decided once when a file is parsed
(fetched or ingested by hand) and stored with it in ``raw.files.constructed``; staging, the
marts, the summary, the ops page and the alert filter read that flag. A file is constructed when

- its name says so: the last path segment of its URL, or of ``manual:<path>`` for a file
  ingested by hand, contains ``_constructed`` (the project's rule for hand-made files); or
- its content carries returnwatch's own marker: the replay mirror writes
  ``CONSTRUCTED_MARKERS`` into every table it builds by hand (its section-5 workbook says
  "CUADRO CONSTRUIDO A MANO ... las cifras son inventadas").

A file fetched from the loopback mirror is not constructed for that reason alone: most of the
mirror's files are the publishers' real figures.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

CONSTRUCTED_NAME = "_constructed"
CONSTRUCTED_MARKERS = (b"CUADRO CONSTRUIDO A MANO", b"CONSTRUCTED BY HAND")


def file_name(url: str) -> str:
    """The last path segment of ``url`` (``manual:<path>`` included), query removed."""
    if url.startswith("manual:"):
        path = url[len("manual:"):]
    else:
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if "=" in parts.query else "")
    return unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])


def is_constructed(url: str, content: bytes | None = None) -> bool:
    """True when the file's name or content says its figures were made by hand."""
    if CONSTRUCTED_NAME in file_name(url).lower():
        return True
    return content is not None and any(m in content for m in CONSTRUCTED_MARKERS)


__all__ = ["CONSTRUCTED_MARKERS", "CONSTRUCTED_NAME", "file_name", "is_constructed"]
