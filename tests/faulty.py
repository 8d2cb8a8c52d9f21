"""Objectives that fail the way real runs do, for the executor tests.

They live in a plain module (not a test module) so that worker processes, local or Ray, can
import them by name when they unpickle a cell.
"""

import os
import time

from gbench_plugins.objectives.ml import MaximumLikelihood


class HangsForever(MaximumLikelihood):
    """A step that never returns: only killing the worker ends it."""

    name = "hangs_forever"

    def step(self, batch, step):
        if step == 3:
            while True:
                time.sleep(1)
        return super().step(batch, step)


class KillsItsWorker(MaximumLikelihood):
    """A step that takes the whole process down, as a segfault or the OOM killer would."""

    name = "kills_its_worker"

    def step(self, batch, step):
        os._exit(9)
