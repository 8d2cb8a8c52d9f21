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


class ReportsItsThreads(MaximumLikelihood):
    """A loss equal to the thread pools its process was given: torch's intra-op threads plus
    100 times the OpenBLAS size its environment set (0 when unset)."""

    name = "reports_its_threads"

    def step(self, batch, step):
        import torch

        super().step(batch, step)
        blas = int(os.environ.get("OPENBLAS_NUM_THREADS", "0"))
        return torch.tensor(float(torch.get_num_threads() + 100 * blas))
