"""A download's ``Content-Disposition`` (RFC 6266) for any file name.

A header value is Latin-1, and a file name carries a site id, which may not be (a site
called "Łódź"): sent as it is, the response cannot be encoded and the download is a 500.
So ``filename`` gets an ASCII stand-in and ``filename*`` the name itself, UTF-8 and
percent-encoded (RFC 8187), which browsers and spreadsheet tools prefer when present.
"""

from __future__ import annotations

from urllib.parse import quote


def attachment(filename: str) -> str:
    """``attachment; filename="..."``, with ``filename*`` when the name is not plain ASCII."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    header = f'attachment; filename="{plain}"'
    if plain != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
