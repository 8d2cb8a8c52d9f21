"""``gbench leaderboard``, ``gbench plot`` and ``gbench report`` on results from a real run.

A tiny grid (ml at two learning rates, two seeds, smoke budget) runs once for the module;
every number checked here is recomputed from its Parquet files with pandas and scipy alone.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark_core.cli.main import main
from benchmark_core.registry import reset_registry
from benchmark_core.results.store import read_file, write_cell

LABELS = ["ml[lr=0.02]", "ml[lr=0.05]"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results")
    reset_registry()
    try:
        main(
            [
                "run",
                "--objectives",
                "ml[lr=[0.02,0.05]]",
                "--tasks",
                "gaussian",
                "--models",
                "isotropic_gaussian",
                "--metrics",
                "nll_test,nll_oracle,moments",
                "--seeds",
                "2",
                "--budget",
                "smoke",
                "--out",
                str(out),
            ]
        )
    except SystemExit as exc:
        assert not exc.code, f"the grid failed with exit code {exc.code}"
    finally:
        reset_registry()
    assert len(list(out.glob("*.parquet"))) == 4
    return out


def copy_results(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.parquet"):
        shutil.copy(f, dst / f.name)
    return dst


def add_cell(folder: Path, cell_id: str, **changes: object) -> None:
    """Clone one finished cell under a new id with some columns changed (a failed seed...)."""
    frame, meta = read_file(sorted(folder.glob("*.parquet"))[0])
    frame = frame.assign(cell_id=cell_id, **changes)
    if changes.get("status", "ok") != "ok":  # a failed cell keeps one row, with no value
        frame = frame.iloc[:1].assign(metric=None, metric_source=None, value=np.nan)
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]
    write_cell(folder, cell_id, rows, meta)


def expected(folder: Path, metric: str) -> pd.DataFrame:
    """Mean, 95% Student-t half-width and rank (lower is better) of a metric's final values."""
    # The folder also holds _plots/ and _report.html, which pyarrow skips by their prefix.
    df = pd.read_parquet(folder)
    df = df[df.status == "ok"]
    evals = df[df.metric_source != "objective"]
    last = evals.groupby("cell_id").step.max()
    final = df[(df.metric == metric) & (df.step == df.cell_id.map(last))]
    by = final.groupby("label").value
    out = pd.DataFrame({"mean": by.mean(), "sd": by.std(ddof=1), "n": by.count()})
    out["ci95"] = stats.t.ppf(0.975, out.n - 1) * out.sd / np.sqrt(out.n)
    # A row ranks behind another only when the other's whole interval lies below its own.
    lo, hi = out["mean"] - out["ci95"], out["mean"] + out["ci95"]
    out["rank"] = [1 + int((hi < lo[k]).sum()) for k in out.index]
    out["rank_hi"] = [len(out) - int((lo > hi[k]).sum()) for k in out.index]
    return out


# --- gbench leaderboard ----------------------------------------------------------------------


def test_leaderboard_csv_numbers_match_pandas(gbench, results_dir: Path) -> None:
    r = gbench("leaderboard", str(results_dir), "--format", "csv")
    assert r.code == 0, r.err
    board = pd.read_csv(io.StringIO(r.out)).set_index("label")
    assert sorted(board.index) == LABELS
    for metric in ("nll_test", "nll_oracle"):
        want = expected(results_dir, metric)
        cols = [f"{metric} ↓ {s}" for s in ("mean", "ci95", "rank", "rank_hi")]
        got = board[cols]
        np.testing.assert_allclose(got.iloc[:, 0], want.loc[got.index, "mean"], rtol=1e-9)
        np.testing.assert_allclose(got.iloc[:, 1], want.loc[got.index, "ci95"], rtol=1e-9)
        np.testing.assert_array_equal(got.iloc[:, 2], want.loc[got.index, "rank"])
        np.testing.assert_array_equal(got.iloc[:, 3], want.loc[got.index, "rank_hi"])
    assert (board.n_seeds == 2).all() and (board.n_failed == 0).all()
    assert "train_loss ↓ mean" not in board  # training losses are not compared by default


def test_leaderboard_json_and_markdown(gbench, results_dir: Path) -> None:
    want = expected(results_dir, "nll_test")
    r = gbench("leaderboard", str(results_dir), "--format", "json", "--metric", "nll_test")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["metrics"] == {"nll_test": {"direction": "min", "arrow": "↓"}}
    rows = {row["objective"]: row for row in doc["tasks"]["gaussian"]}
    for label in LABELS:
        m = rows[label]["metrics"]["nll_test"]
        assert m["mean"] == pytest.approx(want.loc[label, "mean"], rel=1e-12)
        assert m["ci95"] == pytest.approx(want.loc[label, "ci95"], rel=1e-12)
        assert (m["n"], m["rank"]) == (2, want.loc[label, "rank"])
        assert m["rank_hi"] == want.loc[label, "rank_hi"]

    md = gbench("leaderboard", str(results_dir), "--metric", "nll_test,nll_oracle")
    assert md.code == 0, md.err  # not a terminal: Markdown by default
    assert "## `gaussian`" in md.out and "`nll_test` ↓" in md.out and "`nll_oracle` ↓" in md.out
    assert md.out.index("`nll_test`") < md.out.index("`nll_oracle`")  # the order asked for
    assert "cov_eig_0" not in md.out
    best = want["mean"].idxmin()
    line = next(li for li in md.out.splitlines() if f"`{best}`" in li)
    cell = line.split("|")[4]
    if want.loc[best, "rank_hi"] == 1:  # ahead of the other whatever the noise: bold, rank 1
        assert "(1)**" in cell
    else:  # the intervals overlap: ranks 1-2 shared, nothing bold
        assert "(1–2)" in cell and "**" not in md.out


def test_leaderboard_shows_each_tasks_headline_metrics_by_default(
    gbench, results_dir: Path
) -> None:
    from gbench_plugins.tasks.gaussian import GaussianTask

    # the task declares its headline metrics; the grid logged two of them and the moments
    assert GaussianTask.headline_metrics[:2] == ("nll_test", "nll_oracle")
    r = gbench("leaderboard", str(results_dir))
    assert r.code == 0, r.err
    header = next(li for li in r.out.splitlines() if li.startswith("| objective"))
    assert header == "| objective | model | seeds | `nll_test` ↓ | `nll_oracle` ↓ |"
    assert "avg rank" not in r.out and "Average rank across tasks" not in r.out
    every = gbench("leaderboard", str(results_dir), "--all-metrics")
    assert every.code == 0 and "`cov_eig_0`" in every.out and "`nll_oracle`" in every.out
    avg = gbench("leaderboard", str(results_dir), "--average-rank")
    assert avg.code == 0 and "| avg rank |" in avg.out
    both = gbench("leaderboard", str(results_dir), "--all-metrics", "--metric", "nll_test")
    assert both.code == 2 and "pass one" in both.err


def test_leaderboard_writes_files_in_the_format_of_their_extension(
    gbench, results_dir: Path, tmp_path: Path
) -> None:
    for name, marker in (
        ("board.html", "<table"),
        ("board.md", "| objective |"),
        ("board.json", '"tasks"'),
        ("board.txt", "┃ objective"),
    ):
        path = tmp_path / "sub" / name
        r = gbench("leaderboard", str(results_dir), "-o", str(path))
        assert r.code == 0 and r.out.strip() == str(path), r.err
        assert marker in path.read_text(encoding="utf-8"), name
    html = (tmp_path / "sub" / "board.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "ml[lr=0.02]" in html


def test_leaderboard_filters(gbench, results_dir: Path) -> None:
    one = gbench(
        "leaderboard",
        str(results_dir),
        "--format",
        "csv",
        "--objective",
        "ml[lr=0.05]",
        "--model",
        "isotropic_gaussian",
        "--task",
        "gaussian",
        "--budget",
        "smoke",
    )
    assert one.code == 0, one.err
    assert list(pd.read_csv(io.StringIO(one.out)).label) == ["ml[lr=0.05]"]
    both = gbench("leaderboard", str(results_dir), "--format", "csv", "--objective", "ml")
    assert sorted(pd.read_csv(io.StringIO(both.out)).label) == LABELS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "nll"], "--metric nll: no such metric in the results. Did you mean"),
        (
            ["--metric", "nll"],
            "Available metrics: cov_00, cov_01, cov_11, cov_eig_0, cov_eig_1, mean_0, mean_1",
        ),
        (["--objective", "jspi"], "no objective 'jspi' in the results."),
        (["--objective", "jspi"], "Available: ml, ml[lr=0.02], ml[lr=0.05]."),
        (["--task", "text"], "no task 'text' in the results."),
        (["--budget", "paper"], "no cells ran at budget 'paper'. Available: smoke."),
        (["--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_leaderboard_bad_input_exits_2(gbench, results_dir: Path, args, message) -> None:
    r = gbench("leaderboard", str(results_dir), *args)
    assert r.code == 2 and message in r.err, r.err
    assert "Traceback" not in r.err


def test_missing_or_empty_folders_exit_2(gbench, tmp_path: Path) -> None:
    for command in (["leaderboard"], ["plot", "curves"], ["report"]):
        r = gbench(*command, str(tmp_path / "nowhere"))
        assert r.code == 2 and "no such file or folder" in r.err, r.err
        r = gbench(*command, str(tmp_path))
        assert r.code == 2 and f"no gbench results in {tmp_path}" in r.err, r.err


def test_failed_cells_are_listed_under_the_table(gbench, results_dir: Path, tmp_path: Path) -> None:
    folder = copy_results(results_dir, tmp_path / "res")
    add_cell(
        folder,
        "f" * 16,
        seed=7,
        status="error",
        error="Traceback (most recent call last):\n  ...\nRuntimeError: boom at step 3",
    )
    md = gbench("leaderboard", str(folder), "--format", "markdown")
    assert md.code == 0, md.err
    table, _, problems = md.out.partition("## Skipped and failed cells")
    assert "2 (1 failed)" in table
    assert "| 7 | error | `RuntimeError: boom at step 3` |" in problems
    csv = gbench("leaderboard", str(folder), "--format", "csv")
    assert csv.code == 0 and "1 cells skipped or failed (not in the CSV)" in csv.err
    assert "seed 7: error: RuntimeError: boom at step 3" in csv.err
    report = gbench("report", str(folder), "-o", str(tmp_path / "r.html"))
    assert report.code == 0 and "RuntimeError: boom at step 3" in (tmp_path / "r.html").read_text()


def test_mixed_budgets_must_be_chosen(gbench, results_dir: Path, tmp_path: Path) -> None:
    folder = copy_results(results_dir, tmp_path / "res")
    add_cell(folder, "e" * 16, budget="quick")
    r = gbench("leaderboard", str(folder))
    assert r.code == 2 and "the results mix budgets (quick, smoke)" in r.err, r.err
    assert gbench("leaderboard", str(folder), "--budget", "quick").code == 0
    page = tmp_path / "r.html"
    assert gbench("report", str(folder), "-o", str(page)).code == 0
    assert (
        "<h3>budget quick</h3>" in page.read_text() and "<h3>budget smoke</h3>" in page.read_text()
    )


def test_unreadable_files_are_named_by_every_command(
    gbench, results_dir: Path, tmp_path: Path
) -> None:
    folder = copy_results(results_dir, tmp_path / "res")
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    for command in (
        ["leaderboard", str(folder)],
        ["plot", "curves", str(folder), "-o", str(tmp_path / "c")],
        ["report", str(folder), "-o", str(tmp_path / "r.html")],
    ):
        r = gbench(*command)
        assert r.code == 0, r.err
        assert f"warning: ignored {folder / 'broken.parquet'}: not a readable Parquet" in r.err
    assert "broken.parquet" in (tmp_path / "r.html").read_text()  # and in the environment
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(folder / "broken.parquet", only)
    r = gbench("leaderboard", str(only))
    assert r.code == 2 and "broken.parquet" in r.err and "1 unreadable, named above" in r.err


def test_leaderboard_output_cannot_be_turned_against_its_reader(
    gbench, results_dir: Path, tmp_path: Path
) -> None:
    folder = copy_results(results_dir, tmp_path / "res")
    evil = "ml\x1b]0;owned\x07\x1b[2J"
    for seed in (5, 6):
        add_cell(folder, f"evil{seed}", label=evil, seed=seed)
    add_cell(folder, "formula", label="=HYPERLINK(1)", seed=9)
    add_cell(folder, "bad", status="error", seed=7, error="RuntimeError: \x1b[5mboom")
    (folder / "x\x1b[31m.parquet").write_bytes(b"PAR1 not parquet")
    for fmt in ("rich", "markdown", "json", "csv"):
        r = gbench("leaderboard", str(folder), "--format", fmt)
        assert r.code == 0, r.err
        for stream in (r.out, r.err):
            assert "\x1b" not in stream and "\x07" not in stream, (fmt, stream)
        assert "x\\x1b[31m.parquet" in r.err  # the file is still named, escaped
        if fmt != "json":
            assert "ml\\x1b]0;owned\\x07\\x1b[2J" in r.out + r.err
    csv = pd.read_csv(io.StringIO(gbench("leaderboard", str(folder), "--format", "csv").out))
    assert "'=HYPERLINK(1)" in set(csv["label"]) and "=HYPERLINK(1)" not in set(csv["label"])
    assert csv["nll_test ↓ mean"].dtype == float


# --- gbench plot -----------------------------------------------------------------------------


def check_images(paths: list[Path]) -> None:
    png, svg = paths
    assert png.suffix == ".png" and png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 5000
    assert svg.suffix == ".svg" and "<svg" in svg.read_text() and svg.stat().st_size > 5000


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["sweep", "--metric", "nll_test", "--param", "lr"], "sweep_nll_test_vs_lr_gaussian"),
        (["curves"], "curves_gaussian"),
        (["curves", "--metric", "train_loss", "--logy"], "curves_gaussian"),
        (["frontier", "--x", "nll_test", "--y", "nll_oracle"], "frontier_nll_oracle_vs_nll_test"),
    ],
)
def test_plot_kinds_write_png_and_svg_under_plots(
    gbench, results_dir: Path, args, name: str
) -> None:
    r = gbench("plot", args[0], str(results_dir), *args[1:])
    assert r.code == 0, r.err
    paths = [Path(p) for p in r.out.split()]
    assert [p.parent for p in paths] == [results_dir / "_plots"] * 2
    assert paths[0].name.startswith(name)
    check_images(paths)


def test_plot_output_stem(gbench, results_dir: Path, tmp_path: Path) -> None:
    r = gbench("plot", "curves", str(results_dir), "-o", str(tmp_path / "figs" / "c.png"))
    assert r.code == 0, r.err
    assert r.out.split() == [str(tmp_path / "figs" / "c.png"), str(tmp_path / "figs" / "c.svg")]
    check_images([tmp_path / "figs" / "c.png", tmp_path / "figs" / "c.svg"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["figure9"], "Invalid value for 'KIND': 'figure9' is not one of 'sweep', 'curves'"),
        (["sweep", "--metric", "nll_test"], "plot sweep needs one --metric and a --param"),
        (["sweep", "--metric", "nll_test"], "Swept in these results: lr."),
        (["sweep", "--metric", "nll_test", "--param", "pi"], "--param pi: no cell has this"),
        (["sweep", "--metric", "bleu", "--param", "lr"], "Available metrics: cov_00"),
        (["curves", "--metric", "nll_tset"], "Did you mean 'nll_test'?"),
        (["curves", "--x", "nll_test"], "plot curves does not use --x"),
        (["frontier", "--x", "nll_test"], "plot frontier needs --x and --y metrics"),
        (["frontier", "--x", "nll_test", "--y", "mean_0"], "both need a direction"),
        (["frontier", "--x", "nll_test", "--y", "bleu"], "--y bleu: no such metric"),
    ],
)
def test_plot_bad_input_exits_2(gbench, results_dir: Path, args, message: str) -> None:
    r = gbench("plot", args[0], str(results_dir), *args[1:])
    assert r.code == 2 and message in r.err, r.err
    assert "Traceback" not in r.err


def test_plot_needs_one_task(gbench, results_dir: Path, tmp_path: Path) -> None:
    folder = copy_results(results_dir, tmp_path / "res")
    add_cell(folder, "d" * 16, task_label="gaussian[a=9]")
    r = gbench("plot", "curves", str(folder))
    assert r.code == 2 and "these results hold 2: gaussian, gaussian[a=9]" in r.err, r.err
    assert gbench("plot", "curves", str(folder), "--task", "gaussian[a=9]").code == 0


# --- gbench report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_page(results_dir: Path) -> Path:
    reset_registry()
    try:
        main(["report", str(results_dir)])
    except SystemExit as exc:
        assert not exc.code
    page = results_dir / "_report.html"
    assert page.exists()
    return page


def test_report_is_one_self_contained_page(report_page: Path, results_dir: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    assert not re.search(r"https?://", page)  # nothing to fetch (base64 cannot hold ':')
    assert not re.search(r"<(script|link|iframe|object)\b", page)
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/svg+xml;base64,") for src in images)
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", page)
    assert captions == [
        # the headline figures first: a plot kind that a plugin registered
        # (plugins/figures/figure1.py), then the frontier that nll_oracle declares
        "gaussian: the paper&#x27;s Figure 1: P under Q&#x27;s contours per π, and s² against π",
        "gaussian: nll_oracle against nll_test, final values",
        "gaussian: training curves of train_loss, nll_oracle, nll_test",
        "gaussian: final nll_oracle against lr",
        "gaussian: final nll_test against lr",
    ]
    # The leaderboard, with the numbers pandas gives.
    from benchmark_core.reports.formatting import format_estimate

    want = expected(results_dir, "nll_test")
    assert "<h2>Leaderboards</h2>" in page and "<code>ml[lr=0.02]</code>" in page
    for label in LABELS:
        text = format_estimate(want.loc[label, "mean"], want.loc[label, "ci95"])
        assert text.replace(" ± ", "&nbsp;±&nbsp;") in page
    # The environment and the problem cells.
    for key in ("gbench", "torch", "python", "command line", "report made", "budget"):
        assert f"<td>{key}</td>" in page
    assert "None: every cell finished." in page


# --- the report in a browser -----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    # With --enable-logging=stderr every console message, CSP violations included, is logged
    # as a "CONSOLE" line; a page with no script should log none.
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not on PATH (Debian: apt-get install chromium); the headless-browser "
    "check of the HTML report is skipped",
)
def test_report_opens_in_headless_chromium(report_page: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    # The console check can see errors: a page that breaks its own CSP is caught.
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="img-src data:">'
        '<img src="https://example.invalid/x.png">',
        encoding="utf-8",
    )
    seen = chromium(control, tmp_path / "p0", "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert console_lines(seen.stderr), "chromium logged no console lines for a CSP violation"

    dom = chromium(report_page, tmp_path / "p1", "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_lines(dom.stderr) == []
    assert "<h2>Leaderboards</h2>" in dom.stdout and dom.stdout.count("<img") == 5
    assert "<h2>Skipped and failed cells</h2>" in dom.stdout

    shot = tmp_path / "report.png"
    run = chromium(
        report_page,
        tmp_path / "p2",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1400,2400",
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert console_lines(run.stderr) == []
    pixels = (imread(shot)[..., :3] * 255).round().astype(np.uint8)
    assert pixels.shape[:2] == (2400, 1400)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # not blank
    assert (pixels < 200).any(axis=-1).mean() > 0.01  # text, rules and lines, not a white page
    # The figures drew: the first series' Okabe-Ito blue (#0072B2) is on screen.
    blue = (np.abs(pixels.astype(int) - [0, 114, 178]).sum(axis=-1) < 30).sum()
    assert blue > 500, f"only {blue} pixels of the figures' blue in the screenshot"
