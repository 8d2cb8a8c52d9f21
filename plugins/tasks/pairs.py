"""Task ``pairs``: length-2 sequences over K symbols with a known joint table (paper §4.1).

The table comes from a seeded Dirichlet construction (`dirichlet_table`) or from a JSON file
holding a K x K array (``pairs[table=path.json]``); a file that is not a probability table
is refused during selection, before anything runs, with `load_table`'s message. P(x1) and
P(x2 | x1) come from the table, so the task also gives per-token log-probabilities and each
position's whole next-symbol distribution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gbench_plugins.common.pairs import dirichlet_table, load_table, mutual_information

from benchmark_core import Param, Task, hookimpl, positive


class PairsTask(Task):
    """P(x1, x2) a K x K table; sequences are rows [x1, x2] of a long tensor."""

    name = "pairs"
    description = "length-2 sequences over K symbols with a known joint table (paper §4.1)"
    kind = "sequence"
    provides = frozenset(
        {"log_prob", "sample", "enumerable", "token_log_prob", "next_token_log_prob"}
    )
    default_models = ("tabular", "lstm")
    headline_metrics = ("kl_forward", "kl_reverse", "ss_fixed_point_tv", "mi_q")
    # Tempered curves cost next to nothing on K x K tables: the frontier judges every
    # objective against ML's curve.
    metric_params = {
        "nll_test": {"temperatures": [0.5, 0.7, 0.85, 1.2]},
        "nll_oracle": {"temperatures": [0.5, 0.7, 0.85, 1.2]},
    }
    frontier_reference = "ml"
    # ML's curve from its best held-out likelihood: ML overfits the training set.
    frontier_select_by = "nll_test"
    param_spec = {
        "k": Param(5, "number of symbols K (ignored when table is given)", low=2, high=1000),
        "dependence": Param(
            0.8, "strength of the dependence of x2 on x1, in [0, 1]", float, 0.0, 1.0
        ),
        "concentration": positive(1.0, "Dirichlet concentration of the marginals"),
        "noise": Param(0.1, "how far each P(x2|x1) row is from a point mass", float, 0.0, 1.0),
        "table": Param(
            "", "path of a JSON K x K joint table (instead of the Dirichlet one)", file=True
        ),
        "n_train": Param(100_000, "training-set size", low=1, high=10_000_000),
        "n_test": Param(10_000, "held-out test-set size", low=1, high=10_000_000),
        "seed": Param(0, "seed of the table and of the fixed train and test sets", low=0),
    }
    # Tabular models converge in a few hundred steps; Adam's cosine decay settles them.
    budgets = {
        "smoke": {"steps": 400, "n_eval": 4_000},
        "quick": {"steps": 1_500, "n_eval": 20_000},
    }
    max_threads = 1
    length = 2

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        if params["table"]:
            load_table(params["table"])

    def setup(self) -> None:
        if self.table:
            table = load_table(self.table)
        else:
            table = dirichlet_table(
                self.k, self.seed, self.concentration, self.dependence, self.noise
            )
        self.joint_np = np.asarray(table, dtype=np.float64)
        self.vocab_size = self.joint_np.shape[0]
        self.joint = torch.tensor(self.joint_np, dtype=torch.float64)
        self.log_joint = torch.log(self.joint).float()
        # log P(x1) and log P(x2 | x1) in float64 before rounding. A zero row of a file's table
        # has no conditional (-inf - -inf); it gets a uniform one, so that every row is still
        # a distribution (KL[Q‖P] is infinite anyway once Q puts mass on that x1).
        log_marginal = torch.logsumexp(torch.log(self.joint), dim=1)
        second = torch.log(self.joint) - log_marginal[:, None]
        second[log_marginal == -math.inf] = -math.log(self.vocab_size)
        self.log_first = log_marginal.float()
        self.log_second = second.float()
        self.mutual_information = mutual_information(self.joint_np)
        gen = torch.Generator().manual_seed(self.seed)
        self.train = self._draw(self.n_train, gen)
        self.test = self._draw(self.n_test, gen)

    def _draw(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        flat = torch.multinomial(self.joint.reshape(-1), n, replacement=True, generator=gen)
        return torch.stack([flat // self.vocab_size, flat % self.vocab_size], dim=1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_joint[x[:, 0], x[:, 1]]

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """[log P(x1), log P(x2 | x1)] per row, [n, 2]."""
        return torch.stack([self.log_first[x[:, 0]], self.log_second[x[:, 0], x[:, 1]]], dim=1)

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """[log P(·), log P(· | x1)] per row, [n, 2, K]."""
        first = self.log_first.expand(x.shape[0], -1)
        return torch.stack([first, self.log_second[x[:, 0]]], dim=1)

    def sample(self, n: int) -> torch.Tensor:
        return self._draw(n)

    def enumerate(self) -> torch.Tensor:
        """All K² pairs, row-major: row i * K + j is [i, j]."""
        k = self.vocab_size
        idx = torch.arange(k * k, device=self.joint.device)
        return torch.stack([idx // k, idx % k], dim=1)


@hookimpl
def register_tasks(register):
    register(PairsTask)
