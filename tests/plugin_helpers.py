"""Make throwaway plugin distributions that importlib.metadata discovers on sys.path."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

#: A complete third-party objective: mean squared distance of Q's samples to the data mean.
TOY_OBJECTIVE = '''
import torch
from benchmark_core import hookimpl
from benchmark_core.contract import Objective
from benchmark_core.contract.params import positive


class MomentMatch(Objective):
    """Match Q's sample mean to the batch mean (a toy third-party objective)."""

    name = "toy_moment_match"
    description = "toy: match the first moment through reparameterised samples"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"rsample"})
    param_spec = {"lr": positive(0.05)}

    def setup(self, model, task, budget):
        self.model = model
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps)

    def step(self, batch, step):
        loss = ((self.model.rsample(batch.shape[0]).mean(0) - batch.mean(0)) ** 2).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()


@hookimpl
def register_objectives(register):
    register(MomentMatch)
'''


def make_dist(
    root: Path,
    module: str,
    source: str,
    ep_name: str | None = None,
    dist: str = "gbench-toy",
    version: str = "0.3.1",
) -> Path:
    """Write ``module.py`` and a dist-info declaring it as a ``gbench`` entry point."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gbench]\n{ep_name or module} = {module}\n")
    importlib.invalidate_caches()
    sys.modules.pop(module, None)
    return root
