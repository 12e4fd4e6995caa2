"""Files only their owner may read: the SQLite database (patients' data) and the demo's
passwords. Each is created with its final mode, so no umask ever leaves a readable copy,
not even for a moment between creating and ``chmod``."""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (owner-only) and its missing parents (usual mode). An existing
    folder is left as it is: where data lives and who shares it is its owner's choice."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only, in an owner-only folder, unless it exists."""
    make_private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, OWNER_ONLY_FILE))


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, owner-only, in an owner-only folder (a file that was
    readable by others is narrowed before anything is written to it)."""
    make_private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        path.chmod(OWNER_ONLY_FILE)
        handle.write(text)
