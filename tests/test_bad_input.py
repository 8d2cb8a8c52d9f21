"""Bad input to ``gbench run`` — config files, options, seeds, selections — and hostile text.

Each bad input must end in exit code 2 and a message naming what is wrong, before anything
runs: never a traceback, a hang, or a silent surprise. Text that reaches the terminal from
plugins, result files or the user never carries a raw control character.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from plugin_helpers import make_dist

from benchmark_core.results.safe_text import safe_text

RUN = ("run", "--budget", "smoke", "--objectives", "ml", "--tasks", "gaussian")
CHEAP = ("--models", "isotropic_gaussian", "--metrics", "moments")


def _refused(res, out: Path, *fragments: str) -> None:
    text = " ".join((res.out + res.err).split())
    assert res.code == 2, res.out + res.err
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text and "\x1b" not in res.out + res.err
    assert not out.exists()


# --- config files ------------------------------------------------------------------------------

BAD_CONFIGS = [
    ('timeout = "abc"', "timeout = 'abc' must be a finite number > 0"),
    ("timeout = 0", "timeout = 0 must be a finite number > 0"),
    ("timeout = -5", "timeout = -5 must be a finite number > 0"),
    ("timeout = nan", "timeout = nan must be a finite number > 0"),
    ("timeout = inf", "timeout = inf must be a finite number > 0"),
    ("out = 5", "out = 5 must be a string"),
    ("run = 5", "run = 5 must be a table"),
    ('force = "no"', "force = 'no' must be true or false"),
    ('deterministic = "false"', "deterministic = 'false' must be true or false"),
    ("force = 1", "force = 1 must be true or false"),
    ('objectives = "ml"\n[run]\ntasks = "gaussian"', "objectives sit beside the [run] table"),
    ("jobs = 1.5", "jobs = 1.5 must be a whole number ≥ 1"),
    ("replicas = true", "replicas = true must be a whole number ≥ 1"),
    ('budget = "huge"', "budget = 'huge': 'huge' is not one of"),
    ("executor = 5", "executor = 5 must be a string"),
    ("objectives = {a = 1}", "objectives = {'a': 1} must be a string or a list of strings"),
    ("tasks = [[1]]", "tasks = [[1]] must be a string or a list of strings"),
    ('tasks = "gaussian[a="', "tasks = 'gaussian[a=': cannot parse --tasks"),
    ('seeds = "0,9223372036854775808"', "seeds = '0,9223372036854775808': --seeds: seed"),
    ("seeds = [0, true]", "seeds = [0, true] must be a string or a list"),
    ("seeds = 0", "seeds = 0: --seeds '0': give a count of at least 1"),
    ("device = 2024-01-01", "device = datetime.date(2024, 1, 1) must be a string"),
    ("a = " + "[" * 20_000 + "]" * 20_000, "values nested too deeply"),
    ('out = "a\\u0000b"', "out = 'a\\x00b' holds a NUL character"),
    ("jobs = 9223372036854775807", "9223372036854775807 is not a number of jobs: give auto"),
]


@pytest.mark.parametrize("content, fragment", BAD_CONFIGS, ids=range(len(BAD_CONFIGS)))
def test_bad_config_values_exit_2_naming_the_file_and_key(gbench, tmp_path, content, fragment):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(content)
    out = tmp_path / "never"
    res = gbench("run", "--config", str(cfg), "--out", str(out))
    _refused(res, out, f"config file {cfg}", fragment)


def test_a_config_file_that_is_not_utf8_is_a_usage_error(gbench, tmp_path):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('tasks = "gaußian"\n'.encode("latin-1"))
    out = tmp_path / "never"
    _refused(gbench("run", "--config", str(cfg), "--out", str(out)), out, "latin1.toml", "UTF-8")


def test_config_booleans_and_numbers_mean_what_they_say(gbench, tmp_path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        '[run]\nobjectives = "ml"\ntasks = "gaussian"\nmodels = "isotropic_gaussian"\n'
        'seeds = 2\nbudget = "smoke"\nforce = false\ntimeout = 600\nreplicas = 1\n'
    )
    res = gbench("run", "--config", str(cfg), "--dry-run", "--out", str(tmp_path / "o"))
    assert res.code == 0, res.err
    assert "2 cells" in res.out and "run: 2" in " ".join(res.out.split())


def _gbench_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "benchmark_core.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge"])
def test_config_paths_that_are_not_small_regular_files_are_refused(tmp_path, kind):
    """A FIFO used to hang, /dev/zero to read until MemoryError."""
    path = tmp_path / "cfg"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text("# " + "x" * (1 << 20) + "\n")
    out = tmp_path / "never"
    res = _gbench_process("run", "--config", str(path), "--out", str(out), timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    why = "larger than 1 MiB" if kind == "huge" else "is not a regular file"
    assert f"config file {path}" in res.stderr and why in res.stderr
    assert not out.exists()


# --- options: --timeout and --seeds -------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "-inf"),
        ("--timeout", "0"),
        ("--jobs", "99999999999999999999"),
        ("--replicas", "99999999999999999999"),
    ],
)
def test_a_timeout_that_would_turn_the_limit_off_and_huge_job_counts_are_refused(
    gbench, tmp_path, option, value
):
    out = tmp_path / "never"
    res = gbench(*RUN, option, value, "--out", str(out))
    _refused(res, out, "Invalid value for", f"{option}'")


@pytest.mark.parametrize(
    "seeds, fragment",
    [
        ("100000000", "at most 10,000 seeds in one run (asked for 100,000,000)"),
        ("100000000000000000000", "at most 10,000 seeds in one run"),
        ("1" * 5000, "at most 10,000 seeds in one run"),
        ("0,9223372036854775808", "seed 9223372036854775808 is too large"),
        ("0,20000000000000", "seed 20000000000000 is too large: seeds go from 0 to 4,294,967,295"),
        ("0," + "9" * 5000, "seed a 20-digit number is too large"),
        (",", "--seeds ',' is not valid"),
        ("0,,1", "--seeds '0,,1' is not valid"),
        ("٣", "is not valid"),
        ("1_000", "is not valid"),
    ],
)
def test_bad_seeds_are_refused_before_anything_runs(gbench, tmp_path, seeds, fragment):
    out = tmp_path / "never"
    _refused(gbench(*RUN, "--seeds", seeds, "--out", str(out)), out, fragment)


def test_the_largest_seed_runs_beside_seed_0_in_one_replica_batch(gbench, tmp_path):
    """Seed 2**32 - 1 is in range: the seeds the runner derives from it fit torch's."""
    out = tmp_path / "r"
    res = gbench(*RUN, *CHEAP, "--seeds", f"0,{2**32 - 1}", "--out", str(out))
    assert res.code == 0, res.out + res.err
    df = pd.read_parquet(out)
    assert set(df.status) == {"ok"} and set(df.seed) == {0, 2**32 - 1}


# --- selections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tasks, fragment",
    [
        ("gaussian[n_train=99999999999999999999]", "with integers in 64 bits"),
        ("gaussian[n_train=" + "9" * 5000 + "]", "a number of 5000 digits is too large"),
        ("gaussian[n_train=20000000]", "expected int in [1, 10000000]"),
        ("gaussian[a=" + "[" * 5000 + "]" * 5000 + "]", "lists nest at most 2 deep"),
        ("gaussian[a=1e999]", "expected float in (0, inf)"),
        ("gaussian[angle=1e308]", "expected float in [-360, 360]"),
        ("gaussian[a=" + "1" * 400 + "]", "expected float in (0, inf)"),
        ("gaussian[a=\x1b[31m1]", "control character \\x1b"),
        (
            "mixture[k=[" + ",".join(map(str, range(1, 201))) + "],n_train=[" + "1," * 99 + "2]]",
            "more than 10,000",
        ),
    ],
)
def test_bad_selections_are_refused_with_a_message(gbench, tmp_path, tasks, fragment):
    out = tmp_path / "never"
    res = gbench("run", "--budget", "smoke", "--tasks", tasks, "--out", str(out))
    _refused(res, out, fragment)


# --- text on the terminal -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain text · ü ✓", "plain text · ü ✓"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("csi\x9b31m del\x7f", "csi\\x9b31m del\\x7f"),
        ("over\rwrite", "over\\x0dwrite"),
        ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
        ("rtl \u202eevil\u2066 sep\u2028", "rtl \\u202eevil\\u2066 sep\\u2028"),
        ("bytes \udcff", "bytes \\udcff"),
    ],
)
def test_safe_text_makes_every_control_character_visible(raw, shown):
    assert safe_text(raw) == shown
    assert safe_text(raw, multiline=True) == shown.replace("\\x0a", "\n").replace("\\x09", "\t")
    safe_text(raw).encode("utf-8")  # lone surrogates would not even encode


EVIL = """
import torch
from benchmark_core import hookimpl
from benchmark_core.contract import Objective


class Evil(Objective):
    name = "evil"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"rsample"})

    def setup(self, model, task, budget):
        self.model = model

    def step(self, batch, step):
        raise RuntimeError("boom \\x1b]0;pwned\\x07\\x1b[2J\\x9b31m")


@hookimpl
def register_objectives(register):
    register(Evil)
"""


def test_escape_sequences_from_plugins_errors_and_file_names_never_reach_the_terminal(
    gbench, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(make_dist(tmp_path / "evil", "evil_plugin", EVIL)))
    broken = "raise ImportError('\\x1b[31mred\\x1b[0m')"
    monkeypatch.syspath_prepend(
        str(make_dist(tmp_path / "broken", "broken_plugin", broken, dist="gbench-broken"))
    )
    monkeypatch.setenv("GBENCH_LOAD_PLUGINS", "evil_plugin,broken_plugin")
    out = tmp_path / "res\x1b[5m"
    out.mkdir()
    (out / "x\x1b[31m.parquet").write_bytes(b"garbage")
    try:
        res = gbench(
            *RUN[:3], "--objectives", "evil", "--tasks", "gaussian", *CHEAP, "--out", str(out)
        )
    finally:
        sys.modules.pop("evil_plugin", None)
    both = res.out + res.err
    assert res.code == 1 and "\x1b" not in both and "\x9b" not in both, both
    assert "boom \\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in both  # the cell's error, visible
    assert "broken_plugin' failed to load: ImportError: \\x1b[31mred" in res.err
    assert "x\\x1b[31m.parquet: not a readable Parquet file" in res.err
    assert "res\\x1b[5m" in res.out  # "results in ..."


def test_usage_errors_quoting_the_users_input_escape_it(gbench, tmp_path):
    res = gbench("run", "--config", str(tmp_path / "x\x1b[31m.toml"))
    assert res.code == 2 and "x\\x1b[31m.toml" in res.err and "\x1b" not in res.err
    res = gbench("frobnicate\x1b[2J")
    assert res.code == 2 and "frobnicate\\x1b[2J" in res.err and "\x1b" not in res.err
