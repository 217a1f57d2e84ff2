"""Files a command reads and writes: bounded reads of imports, and one line for a full disk."""

from __future__ import annotations

import os
from pathlib import Path

from backend.errors import StudioError
from backend.services.container import Services


def read_bounded(path: Path, limit: int, setting: str) -> bytes:
    """The file's bytes, refused by its size before anything is read, and read in chunks that
    stop at ``limit`` (a file that grows meanwhile is refused too)."""
    size = path.stat().st_size
    too_big = StudioError(f"{path.name} is {size:,} bytes; the import limit is {limit:,} bytes "
                          f"({setting}). Split the file or import a part of it.")
    if size > limit:
        raise too_big
    chunks: list[bytes] = []
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise too_big
            chunks.append(chunk)
    return b"".join(chunks)


def read_import(path: Path, services: Services) -> bytes:
    """A dataset or prompt file to import, within ``CSTUDIO_MAX_DATASET_BYTES``."""
    return read_bounded(path, services.settings.max_dataset_bytes, "CSTUDIO_MAX_DATASET_BYTES")


def disk_full_line(exc: BaseException) -> str | None:
    """One line for a full disk (OSError ENOSPC, or SQLite's 'database or disk is full')."""
    import errno

    where = None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = exc.filename
    elif "database or disk is full" in str(exc):
        where = "the database file"
    else:
        return None
    data_dir = os.environ.get("CSTUDIO_DATA_DIR") or "the data directory"
    return (f"Error: no space left on the disk holding {where or data_dir}; nothing was "
            "stored (the change was rolled back and the store is intact). Free some space and "
            "run the command again.")
