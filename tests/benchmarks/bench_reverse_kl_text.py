"""ml, then reverse_kl warm-started from it, on the ``text`` task: per-token NLLs against steps.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_reverse_kl_text.py ml --steps 2000 --save
ml.pt`` then ``... rkl --init ml.pt --steps 300 --lr 0.002``. Drives the objectives directly
(the engine's cosine schedule over ``--steps``, batches as the engine draws them) and prints
one line per evaluation: nll_test and nll_oracle per token (``--n-eval`` sequences each, with
standard errors), and the process CPU seconds per training step (evaluations excluded). One
thread, as the engine runs text cells.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from gbench_plugins.models.sequence import LSTMModel
from gbench_plugins.objectives.divergences import ReverseKL
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.text import TextTask

from benchmark_core.contract.budgets import Budget
from benchmark_core.engine.loop import Batches, seed_everything


def per_token(values: torch.Tensor, length: int) -> tuple[float, float]:
    """Mean and standard error of −values / length."""
    v = -values.double() / length
    return float(v.mean()), float(v.std() / len(v) ** 0.5)


@torch.no_grad()
def evaluate(model: LSTMModel, task: TextTask, n: int) -> dict[str, float]:
    """nll_test and nll_oracle per token, and Q's own entropy rate (−E_Q log Q / length)."""
    test, test_se = per_token(model.log_prob(task.test[:n]), task.length)
    out = model.sample_with_log_prob(n)
    oracle, oracle_se = per_token(task.log_prob(out.tokens), task.length)
    entropy_q, _ = per_token(out.log_prob, task.length)
    return {
        "nll_test_pt": round(test, 4),
        "se_test": round(test_se, 4),
        "nll_oracle_pt": round(oracle, 4),
        "se_oracle": round(oracle_se, 4),
        "entropy_q_pt": round(entropy_q, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("objective", choices=("ml", "rkl"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--estimator", default="exact_step")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--n-eval", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="state_dict of the model to start from (rkl)")
    parser.add_argument("--save", help="write the final state_dict here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    task = TextTask()
    print(json.dumps({"entropy_rate_p": per_token(task.test_log_prob(), task.length)}))
    seed_everything(args.seed)
    model = LSTMModel(task)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    budget = Budget("bench", args.steps, args.batch, args.n_eval, 1, args.eval_every)
    objective = (
        MaximumLikelihood(lr=args.lr)
        if args.objective == "ml"
        else ReverseKL(lr=args.lr, estimator=args.estimator)
    )
    objective.setup(model, task, budget)
    batches = Batches(task.train, [args.seed], args.batch)
    print(json.dumps({"step": 0, **evaluate(model, task, args.n_eval)}), flush=True)
    cpu, losses = 0.0, []
    for step in range(1, args.steps + 1):
        c0 = time.process_time()
        losses.append(float(objective.step(batches.next()[0], step - 1)))
        cpu += time.process_time() - c0
        if step % args.eval_every == 0 or step == args.steps:
            row = {"step": step, "loss": round(sum(losses) / len(losses), 4)}
            row["cpu_per_step"] = round(cpu / step, 4)
            print(json.dumps({**row, **evaluate(model, task, args.n_eval)}), flush=True)
            losses = []
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
