"""Claims: a cell is claimed before it runs, so that two ``gbench run`` processes sharing a
results folder split the grid between them instead of both running every cell.

A claim is a hidden file ``.<cell_id>.claim``, created exclusively (O_EXCL), holding JSON that
names the claimant (host, boot id, pid, start time and a random token). Two signals say
whether its claimant is still alive, so that a claim never outlives its process:

* an OS lock (``flock``) on the claim file, held for the cell's whole life and released by the
  kernel when the process dies, however it dies. It cannot be fooled by a reused pid or a
  reboot, and needs no clock. On this machine it is the whole answer.
* a heartbeat: a thread of the claimant touches every claim it holds every
  :data:`HEARTBEAT_S` seconds. For a claim made on another machine (where the lock may not be
  visible: some shared filesystems keep locks per client) or on a filesystem without locks,
  a claim whose file has not changed for :data:`LEASE_S` seconds of this process's own clock
  is stale: its claimant is gone. Measured as change seen, not as age, it needs no agreement
  between the machines' clocks.

A stale claim is taken over under its own lock, after checking that the path still names the
file that was judged, so two processes judging one stale claim at once cannot both win.
Results stay idempotent by cell_id (atomic replace), so even a lost race on a filesystem
without locks costs only duplicated work, never a duplicated or corrupt result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the heartbeat alone says who is alive
    fcntl = None  # type: ignore[assignment]

#: Seconds between two touches of a held claim.
HEARTBEAT_S = 15.0
#: A claim not seen to change for this long (this process's clock) is stale, where its lock
#: cannot speak. Longer than a heartbeat plus NFS's attribute cache (60 s at most).
LEASE_S = 180.0
#: A claim file last touched this long ago (by this machine's clock) is stale at first sight;
#: generous, so that clocks that disagree by minutes still never take a live claim.
OLD_S = 3600.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_HOST = socket.gethostname()
_BOOT = _boot_id()


@dataclass
class Claim:
    """A held claim: its file, kept open (and locked) until the claim is released."""

    path: Path
    cell_id: str
    fd: int
    token: str
    locked: bool


def _lock(fd: int) -> bool | None:
    """Take the file's lock without waiting: True, False (held by another), None (no locks)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP...: this filesystem has no locks
        return None
    return True


class _Heartbeat:
    """The claims this process holds, and the thread that keeps them fresh."""

    def __init__(self) -> None:
        self.held: dict[Path, Claim] = {}
        self.mutex = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()

    def add(self, held: Claim) -> None:
        with self.mutex:
            if self.pid != os.getpid():  # a forked child holds nothing of its parent's
                self.held, self.thread, self.pid = {}, None, os.getpid()
            self.held[held.path] = held
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="gbench-claims", daemon=True)
                self.thread.start()

    def remove(self, held: Claim) -> None:
        with self.mutex:
            self.held.pop(held.path, None)

    def owns(self, path: Path) -> bool:
        with self.mutex:
            return self.pid == os.getpid() and path in self.held

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.mutex:
                claims = list(self.held.values())
            for held in claims:
                with contextlib.suppress(OSError):
                    os.utime(held.fd if os.utime in os.supports_fd else held.path)


_HEARTBEAT = _Heartbeat()
#: What this process saw of other processes' claims: path -> (inode, mtime_ns, first seen).
_SEEN: dict[Path, tuple[int, int, float]] = {}


def _monotonic() -> float:
    return time.monotonic()


def _read_owner(fd: int) -> dict[str, Any]:
    """The claimant's record, or {} when the file is empty or not one (being written)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return {}
    try:
        owner = json.loads(raw)
    except (ValueError, RecursionError):
        words = raw.split()  # the format before JSON: "host pid"
        if len(words) == 2 and words[1].isdigit():
            return {"host": words[0], "pid": int(words[1])}
        return {}
    return owner if isinstance(owner, dict) else {}


def _same_machine(owner: dict[str, Any]) -> bool:
    if owner.get("boot") and _BOOT:
        return owner["boot"] == _BOOT  # a reboot or another machine with the same name differ
    return owner.get("host") == _HOST


def _pid_gone(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def _is_stale(path: Path, fd: int, lock: bool | None) -> bool:
    """Whether the claim open at ``fd`` (whose lock this process just tried) is abandoned."""
    stat = os.fstat(fd)
    if not S_ISREG(stat.st_mode):
        return True  # not a claim gbench made (a folder, a FIFO): nothing holds it
    owner = _read_owner(fd)
    if lock and owner.get("locked") and _same_machine(owner):
        return True  # its claimant held this lock until the moment it died
    here = _same_machine(owner) and owner.get("host") == _HOST  # and the same pid namespace
    if not owner.get("locked") and here and _pid_gone(owner.get("pid")):
        return True  # a claim that could not be locked, or one from before locks
    if time.time() - stat.st_mtime > OLD_S:
        return True
    seen = _SEEN.get(path)
    now = _monotonic()
    if seen is None or seen[:2] != (stat.st_ino, stat.st_mtime_ns):
        _SEEN[path] = (stat.st_ino, stat.st_mtime_ns, now)
        return False
    return now - seen[2] > LEASE_S  # no heartbeat seen for a whole lease


def _take_over_if_stale(path: Path) -> bool:
    """Remove the claim at ``path`` if its claimant is gone; True when the path is free now."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        lock = _lock(fd)
        if lock is False:
            return False  # a live process holds it
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return False  # replaced while we looked: judge the new one next time
        except FileNotFoundError:
            return True
        if not _is_stale(path, fd, lock):
            return False
        try:
            path.unlink(missing_ok=True)  # under the lock: nobody else can judge it now
        except OSError:
            return False  # a folder in its place: reported as held, never run over
        _SEEN.pop(path, None)
        return True
    finally:
        os.close(fd)


def claim(out_dir: Path, cell_id: str) -> Claim | None:
    """Claim a cell; return the held claim, or None when a live process holds it."""
    path = out_dir / f".{cell_id}.claim"
    if _HEARTBEAT.owns(path):
        return None
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            if _take_over_if_stale(path):
                continue
            return None
        try:
            locked = _lock(fd)
            token = secrets.token_hex(8)
            owner = {
                "host": _HOST,
                "boot": _BOOT,
                "pid": os.getpid(),
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "token": token,
                "locked": bool(locked),
            }
            os.write(fd, json.dumps(owner).encode() + b"\n")
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        held = Claim(path, cell_id, fd, token, bool(locked))
        _HEARTBEAT.add(held)
        return held
    return None


def release(held: Claim) -> None:
    """Give a claim back (removing its file only if it is still this claim's)."""
    _HEARTBEAT.remove(held)
    try:
        with contextlib.suppress(OSError):
            if os.stat(held.path).st_ino == os.fstat(held.fd).st_ino:
                held.path.unlink()
    finally:
        with contextlib.suppress(OSError):
            os.close(held.fd)


def release_all() -> list[Claim]:
    """Give back every claim this process still holds (after a failure); return them."""
    with _HEARTBEAT.mutex:
        claims = list(_HEARTBEAT.held.values()) if _HEARTBEAT.pid == os.getpid() else []
    for held in claims:
        release(held)
    return claims


def describe_holder(out_dir: Path, cell_id: str) -> str:
    """Who holds a cell's claim, in words (for messages)."""
    path = out_dir / f".{cell_id}.claim"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return "no claim now"
    try:
        owner = _read_owner(fd)
    finally:
        os.close(fd)
    if not owner:
        return "a claim being written"
    since = f" since {owner['started']}" if owner.get("started") else ""
    return f"host {owner.get('host', '?')} pid {owner.get('pid', '?')}{since}"
