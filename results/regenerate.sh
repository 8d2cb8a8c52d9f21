#!/usr/bin/env bash
# Regenerates the committed leaderboard and figures in this folder: the README's main job at
# the quick budget with 3 seeds, then the tables and pictures made from its results.
# The raw Parquet files land in results/quick/ and are not committed.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
gbench run --objectives all --tasks gaussian,text --seeds 3 -j 2 --out quick || true
end=$(date +%s)
gbench leaderboard quick -o leaderboard.md
gbench claims all --out quick -j 2 -o claims.md || true   # reuses the grid's cells it shares
gbench plot figure1 quick --task gaussian -o figure1
gbench plot frontier quick --task text --x nll_test --y nll_oracle -o text_frontier
gbench plot curves quick --task text --metric nll_test,nll_oracle,nll_div -o text_curves
gbench report quick -o report.html
{
  echo "command: gbench run --objectives all --tasks gaussian,text --seeds 3 -j 2 --out quick"
  echo "grid wall time (s): $((end - start))"
  echo "date (UTC): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "gbench: $(gbench --version)"
  python -c 'import torch, platform; print("torch:", torch.__version__); print("python:", platform.python_version()); print("machine:", platform.platform())'
  echo "cpus: $(nproc), load average after the grid: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cells: $(ls quick/*.parquet | wc -l) files (default --replicas 32: seeds and π of the vector objectives train together)"
} > environment.txt
