"""Where a redirect may lead: only to this site.

A ``next`` parameter is read the way a browser reads a Location header: it drops
tabs and line breaks and takes ``\\`` for ``/``, so ``/\\t/evil.example`` is
``//evil.example``, another site. The target is normalised that way first, then
kept only when it is a path on this site (no scheme, no host, one leading slash).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DROPPED = str.maketrans({"\t": None, "\n": None, "\r": None, "\\": "/"})


def same_site_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None."""
    if not target:
        return None
    seen = target.strip().translate(_DROPPED)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in seen):
        return None
    parts = urlsplit(seen)
    if parts.scheme or parts.netloc or not seen.startswith("/") or seen.startswith("//"):
        return None
    return seen


def same_origin(url: str | None, origin: str) -> bool:
    """Whether ``url`` is on ``origin`` (scheme and host as in the app's public URL)."""
    if not url:
        return False
    parts, home = urlsplit(url.strip()), urlsplit(origin)
    return (parts.scheme, parts.netloc) == (home.scheme, home.netloc) and not any(
        ch in url for ch in "\t\n\r\\"
    )
