"""The ``gbench`` command line, used as a researcher would."""

import sys

import pandas as pd
import pytest
import torch
from helpers import registry_with
from test_runner import RaiseInStep

import benchmark_core.registry as plugins_mod
from benchmark_core import __version__
from benchmark_core.contract import Objective

ISSUE_CMD = [
    "run",
    "--objectives",
    "ml",
    "--tasks",
    "gaussian[a=9,b=0.5,angle=30]",
    "--models",
    "isotropic_gaussian,gaussian",
    "--seeds",
    "2",
    "--budget",
    "smoke",
    "--metrics",
    "moments",
]


def final(df):
    last = df.groupby("cell_id").step.transform("max")
    return df[df.step == last]


def test_ml_fits_the_closed_forms_then_resume_and_force(gbench, tmp_path):
    out = tmp_path / "res"
    first = gbench(*ISSUE_CMD, "--out", str(out))
    assert first.code == 0, first.out + first.err
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 4
    df = final(pd.read_parquet(out))
    assert (df.status == "ok").all()
    eig = df.pivot_table(index=["model", "seed"], columns="metric", values="value")
    iso, full = eig.loc["isotropic_gaussian"], eig.loc["gaussian"]
    # ML for N(μ, s²I) is moment matching: s² = (a + b) / 2
    assert ((iso.cov_eig_0 / 4.75 - 1).abs() < 0.03).all(), iso.cov_eig_0
    assert ((full.cov_eig_0 / 9 - 1).abs() < 0.03).all() and (
        (full.cov_eig_1 / 0.5 - 1).abs() < 0.03
    ).all()

    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = gbench(*ISSUE_CMD, "--out", str(out))
    assert (
        again.code == 0 and "done earlier" in again.out and "ok" not in again.out.split("done")[0]
    )
    assert {f: f.stat().st_mtime_ns for f in files} == stamps

    forced = gbench(*ISSUE_CMD, "--out", str(out), "--force")
    assert forced.code == 0 and "done earlier" not in forced.out
    assert all(f.stat().st_mtime_ns != stamps[f] for f in files)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--objectives", "mll"],
            "unknown objective 'mll'. Did you mean 'ml'? Valid objectives: jspi, jspi_exact, ml, reverse_kl",
        ),
        (["--tasks", "gausian"], "unknown task 'gausian'. Did you mean 'gaussian'?"),
        (
            ["--tasks", "gaussian[aa=1]"],
            "gaussian has no parameter 'aa'. Did you mean 'a'? "
            "Its parameters: a, b, angle, n_train, n_test, seed.",
        ),
        (
            ["--tasks", "gaussian[a=-1]"],
            "gaussian[a]=-1 is not a valid value: expected float in (0, inf)",
        ),
        (["--tasks", "gaussian[a=1"], "cannot parse --tasks at position 13: expected ']'"),
        (
            ["--models", "isotropic"],
            "unknown model 'isotropic'. Did you mean 'isotropic_gaussian'?",
        ),
        (["--metrics", "nll"], "unknown metric 'nll'."),
        (["--seeds", "two"], "--seeds 'two' is not valid"),
        (["--budget", "huge"], "'huge' is not one of 'smoke', 'quick', 'paper'"),
        (["--timeout", "-1"], "Invalid value for '--timeout'"),
        (
            ["--address", "10.0.0.1:6379"],
            "--address is a Ray cluster's address: add --executor ray to run the grid there.",
        ),
        (["--executor", "dask"], "'dask' is not one of 'local', 'ray'"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(gbench, tmp_path, args, message):
    out = tmp_path / "never"
    res = gbench("run", "--budget", "smoke", "--out", str(out), *args)
    assert res.code == 2
    assert message in " ".join((res.out + res.err).split())
    assert "Traceback" not in res.out + res.err
    assert not out.exists()


def test_the_ray_executor_without_ray_says_how_to_install_it(gbench, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    res = gbench("run", "--executor", "ray", "--budget", "smoke", "--out", str(tmp_path / "x"))
    assert res.code == 2
    assert "--executor ray needs Ray, which is not installed here: pip install 'gbench[ray]'." in (
        res.err
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_asking_for_cuda_without_it_is_a_usage_error(gbench, tmp_path):
    res = gbench("run", "--device", "cuda", "--out", str(tmp_path / "x"), "--budget", "smoke")
    assert res.code == 2 and "CUDA is not available" in res.err


def test_dry_run_prints_the_grid_with_skip_reasons_and_runs_nothing(gbench, tmp_path, monkeypatch):
    class NeedsSeq(Objective):
        name = "needs_seq"
        kinds = frozenset({"sequence"})

    monkeypatch.setattr(plugins_mod, "_REGISTRY", registry_with(NeedsSeq))
    monkeypatch.setenv("COLUMNS", "250")
    out = tmp_path / "dry"
    res = gbench(
        "run", "--objectives", "ml,needs_seq", "--tasks", "gaussian", "--dry-run", "--out", str(out)
    )
    assert res.code == 0
    text = " ".join(res.out.split())
    assert "4 cells" in text and "run: 2" in text and "skip: 2" in text
    assert "needs_seq works on sequence tasks; gaussian is a vector task" in text
    assert (
        "metrics c2st, jspi, kl_forward, kl_reverse, mmd, moments, nll_oracle, nll_test, prdc"
        in text
    )
    assert not out.exists()


def test_a_failed_cell_gives_exit_code_1_and_the_grid_goes_on(gbench, tmp_path, monkeypatch):
    monkeypatch.setattr(plugins_mod, "_REGISTRY", registry_with(RaiseInStep))
    out = tmp_path / "r"
    res = gbench(
        "run",
        "--objectives",
        "raise_in_step,ml",
        "--tasks",
        "gaussian",
        "--budget",
        "smoke",
        "--models",
        "isotropic_gaussian",
        "--metrics",
        "nll_test",
        "--out",
        str(out),
    )
    assert res.code == 1
    statuses = pd.read_parquet(out).groupby("objective").status.first().to_dict()
    assert statuses == {"raise_in_step": "error", "ml": "ok"}
    assert "exploded on purpose" in res.out


def test_config_file_holds_the_same_options(gbench, tmp_path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        'objectives = "ml"\ntasks = ["gaussian[a=2]", "gaussian[a=3]"]\n'
        'models = "isotropic_gaussian"\nseeds = [0, 5]\nbudget = "smoke"\n'
    )
    res = gbench("run", "--config", str(cfg), "--dry-run", "--out", str(tmp_path / "o"))
    assert res.code == 0 and "4 cells" in res.out
    # a command-line option wins over the file
    res = gbench(
        "run", "--config", str(cfg), "--seeds", "1", "--dry-run", "--out", str(tmp_path / "o")
    )
    assert "2 cells" in res.out


@pytest.mark.parametrize(
    "content, message",
    [
        ("tasks = [", "is not valid TOML"),
        ("taks = 'gaussian'", "unknown key 'taks'. Did you mean 'tasks'?"),
        ("replicas = 0", "replicas = 0 must be a whole number ≥ 1"),
        ("jobs = 'two'", "jobs = 'two': 'two' is not a number of jobs: give auto"),
        ("jobs = true", 'jobs = true must be a whole number ≥ 1 or "auto"'),
    ],
)
def test_bad_config_files_are_usage_errors(gbench, tmp_path, content, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    res = gbench("run", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert res.code == 2 and message in res.err and "bad.toml" in res.err
    res = gbench("run", "--config", str(tmp_path / "missing.toml"))
    assert res.code == 2 and "cannot read config file" in res.err


def test_an_output_folder_that_cannot_be_written_is_a_usage_error(gbench, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = gbench("run", "--budget", "smoke", "--objectives", "ml", "--out", str(blocker / "sub"))
    assert res.code == 2 and "cannot write results to" in res.err and "--out" in res.err


def test_version_list_and_plugins(gbench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert gbench("--version").out.strip() == f"gbench {__version__}"
    listing = gbench("list", "tasks")
    assert listing.code == 0 and "gaussian" in listing.out and "a=4.0" in listing.out
    assert "objectives" not in listing.out
    everything = gbench("list").out
    for word in ("tasks", "models", "objectives", "metrics", "lower is better", "nll_oracle"):
        assert word in everything
    table = gbench("plugins").out
    assert "gbench_plugins.objectives.ml" in table and "objective:ml" in table
    import json

    data = json.loads(gbench("plugins", "--json").out)
    assert {p["name"] for p in data["plugins"]} >= {"gbench_plugins.tasks.gaussian"} and data[
        "failed"
    ] == []


def test_run_reports_a_corrupt_file_in_the_results_folder_by_name(gbench, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "broken.parquet").write_bytes(b"garbage")
    res = gbench(
        "run",
        "--objectives",
        "ml",
        "--tasks",
        "gaussian",
        "--models",
        "isotropic_gaussian",
        "--budget",
        "smoke",
        "--out",
        str(out),
        "--dry-run",
    )
    assert res.code == 0
    assert "broken.parquet: not a readable Parquet file" in res.err


# --- a command line that starts fast ------------------------------------------------------------

_HEAVY = ("torch", "matplotlib", "pandas", "pyarrow", "gbench_plugins", "benchmark_core.registry")


@pytest.mark.parametrize("argv", [None, ["--version"], ["--help"], ["run", "--help"]])
def test_the_command_line_starts_without_torch_or_any_plugin(argv):
    """Importing the CLI, and --version / --help, load no plugin, torch, matplotlib or pandas."""
    import subprocess

    code = (
        "import sys\n"
        "from benchmark_core.cli.main import main\n"
        f"argv = {argv!r}\n"
        "if argv is not None:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        f"heavy = {_HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_lazy_commands_short_help_is_their_own():
    import importlib

    import click

    from benchmark_core.cli.group import LAZY_COMMANDS

    for name, (module, short_help) in LAZY_COMMANDS.items():
        group = click.Group()
        importlib.import_module(module).add_commands(group)
        real = group.commands[name]
        for limit in (45, 1000):
            assert click.Command(name, help=short_help).get_short_help_str(limit) == (
                real.get_short_help_str(limit)
            )


def test_built_in_plugins_add_no_commands():
    """gbench --help lists plugin commands only when a third-party plugin is installed."""
    registry = plugins_mod.load_registry({"GBENCH_LOAD_PLUGINS": ""})
    assert registry.manager.hook.register_commands.get_hookimpls() == []


COMMANDS_PLUGIN = '''
import click
from benchmark_core import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command("say-hi")
    def say_hi():
        """Say hi from a third-party plugin."""
        click.echo("hi")

    @cli.command("run")
    def run():
        """A plugin may not replace a built-in command."""
'''


def test_plugin_commands_are_listed_in_help_and_cannot_replace_built_ins(
    gbench, tmp_path, monkeypatch
):
    from plugin_helpers import make_dist

    from benchmark_core.cli.main import cli

    monkeypatch.syspath_prepend(str(make_dist(tmp_path, "cmd_plugin", COMMANDS_PLUGIN)))
    monkeypatch.setenv("GBENCH_LOAD_PLUGINS", "cmd_plugin")
    run = cli.commands["run"]
    try:
        helped = gbench("--help")
        assert (
            helped.code == 0
            and "say-hi" in helped.out
            and "Say hi from a third-party" in (helped.out)
        )
        assert gbench("say-hi").out.strip() == "hi"
        assert cli.commands["run"] is run
        listed = gbench("plugins")
        assert "register_commands tried to replace `gbench run`" in listed.err
    finally:
        cli.commands.pop("say-hi", None)
        cli.commands["run"] = run
        sys.modules.pop("cmd_plugin", None)
