"""A download's ``Content-Disposition`` (RFC 6266) for any file name.

A header value is Latin-1, and a file name carries a site id, which may not be (a site
called "Łódź"), or may hold quotes and line breaks: sent as it is, the response cannot be
encoded (a 500) or the header breaks. So ``filename`` gets a stand-in of letters, digits,
``.``, ``_`` and ``-``, and ``filename*`` the name itself, UTF-8 and percent-encoded
(RFC 8187), which browsers and spreadsheet tools prefer when present.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def attachment(filename: str) -> str:
    """``attachment; filename="..."``, with ``filename*`` when the name needed a stand-in."""
    plain = _UNSAFE.sub("_", filename).strip(".") or "download"
    header = f'attachment; filename="{plain}"'
    if plain != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
