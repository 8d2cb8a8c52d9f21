import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.selection import Spec, expand, parse_seeds, parse_selection
from benchmark_core.registry import load_registry


def test_parse_all_and_plain_names():
    assert parse_selection("all") is None
    assert parse_selection("ml, gaussian") == [Spec("ml"), Spec("gaussian")]


def test_parse_parameters_types_and_sweeps():
    specs = parse_selection("jspi[pi=[0.1,0.5,0.99],steps=3,ns=true,layout=ring],ml")
    assert specs[0] == Spec(
        "jspi", {"pi": [0.1, 0.5, 0.99], "steps": 3, "ns": True, "layout": "ring"}
    )
    assert specs[1] == Spec("ml")
    assert parse_selection("pairs[table='a b.json']")[0].params == {"table": "a b.json"}
    assert parse_selection("pairs[table=data/t.json]")[0].params == {"table": "data/t.json"}
    assert parse_selection("x[a=-1e-3,b=2.]")[0].params == {"a": -1e-3, "b": 2.0}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("jspi[pi=0.5", "expected ']'"),
        ("jspi[pi]", "expected '='"),
        ("jspi[=1]", "expected a name"),
        ("ml,,jspi", "expected a name"),
        ("jspi[pi=[0.1,0.5]", "expected ']'"),
        ("jspi[pi=1,pi=2]", "given twice"),
        ("ml jspi", "unexpected"),
        ("x[a='open]", "unterminated"),
    ],
)
def test_malformed_selections_are_usage_errors_with_a_position(text, fragment):
    with pytest.raises(UsageError, match="position") as info:
        parse_selection(text, "objectives")
    assert fragment in str(info.value)
    assert "--objectives" in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=[],.'\" 01-_e", max_size=30))
def test_the_parser_never_crashes(text):
    with contextlib.suppress(UsageError):
        parse_selection(text)


def test_expand_sweeps_validates_and_labels():
    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    confs = expand("task", parse_selection("gaussian[a=[1,2],b=0.5]"), registry)
    assert [c.params["a"] for c in confs] == [1.0, 2.0]
    assert [c.label for c in confs] == ["gaussian[a=1,b=0.5]", "gaussian[a=2,b=0.5]"]
    assert confs[0].params["angle"] == 0.0  # defaults filled in
    with pytest.raises(UsageError, match="unknown task 'gausian'.*Did you mean 'gaussian'"):
        expand("task", parse_selection("gausian"), registry)
    with pytest.raises(
        UsageError, match=r"gaussian\[a\]=-1 is not a valid value: expected float in \(0, inf\)"
    ):
        expand("task", parse_selection("gaussian[a=-1]"), registry)


def test_metrics_refuse_sweeps():
    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    with pytest.raises(UsageError, match="single values"):
        expand("task", [Spec("gaussian", {"a": [1.0, 2.0]})], registry, allow_sweeps=False)


def test_seeds():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("0,4,7") == [0, 4, 7]
    assert parse_seeds("7,") == [7]  # one trailing comma: a list of one seed
    for bad in ("0", "x", "1,1", "-1,2"):
        with pytest.raises(UsageError, match="seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("x[a=" + "1" * 5000 + "]", "a number of 5000 digits is too large"),
        ("x[a=" + "[" * 5000 + "]" * 5000 + "]", "lists nest at most 2 deep"),
        ("x[a=[[[1]]]]", "lists nest at most 2 deep"),
        ("x[a='\x1b[2J']", "control character \\x1b"),
        ("x[a=\u202eevil]", "control character \\u202e"),
    ],
)
def test_hostile_selections_are_usage_errors_not_crashes(text, fragment):
    with pytest.raises(UsageError) as info:
        parse_selection(text, "tasks")
    assert fragment in str(info.value) and "\x1b" not in str(info.value)
    assert len(str(info.value)) < 600  # the message shows a window, not all 5,000 characters


def test_list_sweeps_nest_two_deep():
    assert parse_selection("x[a=[[1,2],[3]]]")[0].params == {"a": [[1, 2], [3]]}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=[],.'\" 01-_e\x1b\x9b\u202e", max_size=60))
def test_the_parser_never_crashes_on_hostile_text(text):
    with contextlib.suppress(UsageError):
        parse_selection(text)


def test_a_sweep_past_the_limit_is_refused():
    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    values = ",".join(str(1 + i / 1000) for i in range(101))
    with pytest.raises(UsageError, match="10,201 configurations, more than 10,000"):
        expand("task", parse_selection(f"gaussian[a=[{values}],b=[{values}]]"), registry)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("100000000", "at most 10,000 seeds"),
        ("10001", "at most 10,000 seeds"),
        ("0,4294967296", "seed 4294967296 is too large"),
        (",", "is not valid"),
        ("0,,1", "is not valid"),
        ("1" * 5000, "at most 10,000 seeds"),
    ],
)
def test_seeds_are_bounded(text, fragment):
    with pytest.raises(UsageError, match="seed") as info:
        parse_seeds(text)
    assert fragment in str(info.value)
    assert parse_seeds("10000")[-1] == 9999 and parse_seeds(f"0,{2**32 - 1}") == [0, 2**32 - 1]
