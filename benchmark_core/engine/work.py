"""The work left in a grid, as every executor takes it: claimed items, and the cells that
another process holds, waited for and taken over if their claimant dies.

A cell claimed elsewhere is not done: this run keeps looking at it (every
:data:`POLL_S` seconds once its own items are gone) until it is finished there, or its claim
goes stale and this run takes it over and runs it, or :data:`WAIT_ELSEWHERE_S` seconds pass.
Cells still held elsewhere then are reported as such, and the run does not count as complete.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmark_core.engine.grid import Cell
from benchmark_core.results.cell_claims import Claim

#: A claimed work item: each cell with the claim that reserves it.
Claimed = list[tuple[Cell, Claim]]

#: Seconds between two looks at the cells claimed by other processes.
POLL_S = 1.0
#: How long a run whose own work is done waits for cells that other processes are running.
#: Longer than a claim's lease, so that a claimant that died on another machine is noticed.
WAIT_ELSEWHERE_S = 600.0

#: acquire(cells) -> (the claimed cells, the cells another process holds)
Acquire = Callable[[list[Cell]], tuple[Claimed, list[Cell]]]


class Work:
    """The items not yet started, and the cells held by other processes.

    ``take`` returns the next claimed item, or None when nothing can start now; ``pending``
    says whether anything is left to start or to wait for.
    """

    def __init__(self, items: list[list[Cell]], acquire: Acquire, wait_s: float | None = None):
        self.items = deque(items)
        self.acquire = acquire
        self.wait_s = WAIT_ELSEWHERE_S if wait_s is None else wait_s
        self.elsewhere: dict[str, Cell] = {}
        self._idle_since: float | None = None
        self._last_look = float("-inf")

    @property
    def pending(self) -> bool:
        """Whether items are left, or cells held elsewhere are still worth waiting for."""
        if self.items:
            return True
        if not self.elsewhere:
            return False
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since < self.wait_s

    def take(self) -> Claimed | None:
        """The next item with its claims, or None when nothing can start now."""
        while self.items:
            claimed, held = self.acquire(self.items.popleft())
            self._defer(held)
            if claimed:
                return claimed
        if self.elsewhere and time.monotonic() - self._last_look >= POLL_S:
            self._last_look = time.monotonic()
            return self.look_again()
        return None

    def look_again(self) -> Claimed | None:
        """Look at the cells held elsewhere: claim the first whose claimant is gone."""
        for cell_id, cell in list(self.elsewhere.items()):
            claimed, held = self.acquire([cell])
            if not held:
                del self.elsewhere[cell_id]  # finished there, or ours now
            if claimed:
                return claimed
        return None

    def idle(self) -> None:
        """Wait a little before looking again (for executors with nothing else to wait on)."""
        time.sleep(POLL_S)

    def _defer(self, cells: list[Cell]) -> None:
        for cell in cells:
            self.elsewhere[cell.cell_id] = cell


_DEFERRING = False


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while results are written or claims given back.

    A signal that arrives inside is raised as KeyboardInterrupt on the way out, so a second
    Ctrl-C can neither cut a cell's record in half nor leak its claim, and is never lost.
    """
    global _DEFERRING
    if _DEFERRING or threading.current_thread() is not threading.main_thread():
        yield  # an outer block already holds them (and raises on its way out)
        return
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    _DEFERRING = True
    try:
        yield
    finally:
        _DEFERRING = False
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if caught:
        raise KeyboardInterrupt


def holder_note(out_dir: Path, cells: list[Cell], describe: Callable[[Path, str], str]) -> str:
    """One warning naming the cells still running elsewhere and who holds them."""
    lines = [
        f"{len(cells)} cell(s) still running in another gbench process when this run ended; "
        "their results are not in this run (run the same command again once they finish, or "
        "once their claimant is gone):"
    ]
    lines += [
        f"  {c.cell_id} {c.describe()} (claimed by {describe(out_dir, c.cell_id)})" for c in cells
    ]
    return "\n".join(lines)
