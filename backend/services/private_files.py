"""Files only the studio's account can read (issue 13 point 7): the data directory is 0700 and
every file in it 0600. ``cstudio`` sets the umask at start; ``wider_than_private`` names what
is readable by others (an older install, a copy made by hand) so the CLI can warn."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
MAX_CHECKED = 20_000  # entries looked at on start (a huge runs/ folder must not slow it down)


def make_private(data_dir: Path) -> None:
    """Set the process umask (new files 0600, folders 0700) and create the data directory 0700
    (an existing one is narrowed to 0700 when this account owns it)."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if data_dir.stat().st_uid == os.getuid() and stat.S_IMODE(data_dir.stat().st_mode) \
                & 0o077:
            data_dir.chmod(0o700)
    except OSError:
        pass


def wider_than_private(data_dir: Path, *, limit: int = MAX_CHECKED) -> list[Path]:
    """Paths under (and including) ``data_dir`` that other accounts may read or enter."""
    found: list[Path] = []
    if not data_dir.exists():
        return found
    seen = 0
    for root, dirs, files in os.walk(data_dir):
        for name in [None, *files]:
            path = Path(root) if name is None else Path(root) / name
            seen += 1
            if seen > limit:
                return found
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                continue
            if stat.S_IMODE(mode) & 0o077:
                found.append(path)
        dirs.sort()
    return found


def warning_for(data_dir: Path) -> str | None:
    """One warning line (None when everything is private)."""
    wide = wider_than_private(data_dir)
    if not wide:
        return None
    shown = ", ".join(str(p) for p in wide[:3]) + (f" and {len(wide) - 3} more"
                                                   if len(wide) > 3 else "")
    return (f"Warning: other accounts on this machine can read {shown}. Make them private: "
            f"chmod -R go-rwx {data_dir}")
