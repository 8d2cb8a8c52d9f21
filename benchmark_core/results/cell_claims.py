"""Claims: a cell is claimed before it runs, so that two ``gbench run`` processes sharing a
results folder split the grid between them instead of both running every cell.

A claim is a hidden file ``.<cell_id>.claim`` created exclusively (O_EXCL) and holding the
claimant's host and pid; it is removed once the cell's result is written. A claim left by a
process that died on this host is stale and is taken over. Results stay idempotent by
cell_id (atomic replace), so even a lost race costs only duplicated work, never a duplicated
or corrupt result.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

#: A claim file too young to have been written completely is never judged stale.
_GRACE_S = 30.0


def _is_stale(path: Path) -> bool:
    try:
        text = path.read_text().split()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    if len(text) != 2 or not text[1].isdigit():
        return age > _GRACE_S
    host, pid = text[0], int(text[1])
    if host != socket.gethostname():
        return False  # cannot see another machine's processes: respect its claim
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(out_dir: Path, cell_id: str) -> Path | None:
    """Claim a cell; return the claim's path, or None when a live process holds it."""
    path = out_dir / f".{cell_id}.claim"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _is_stale(path):
                path.unlink(missing_ok=True)
                continue
            return None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{socket.gethostname()} {os.getpid()}\n")
        return path
    return None


def release(path: Path) -> None:
    """Give a claim back."""
    path.unlink(missing_ok=True)
