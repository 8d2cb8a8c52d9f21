import pytest

from benchmark_core.contract.errors import UsageError
from benchmark_core.contract.params import Param, positive, probability, validate_params


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, "0.5", True, float("nan")])
def test_probability_refuses_values_outside_the_open_interval(bad):
    with pytest.raises(UsageError, match=r"jspi\[pi\].*float in \(0, 1\)"):
        probability(0.5).validate(bad, "jspi[pi]")


def test_probability_accepts_interior_values_and_ints_become_floats():
    assert probability(0.5).validate(0.25, "p") == 0.25
    value = positive(1.0).validate(3, "x")
    assert value == 3.0 and isinstance(value, float)


def test_int_parameter_refuses_a_float_and_a_bool():
    spec = Param(10, low=1)
    with pytest.raises(UsageError, match="int"):
        spec.validate(2.5, "k")
    with pytest.raises(UsageError):
        spec.validate(True, "k")
    with pytest.raises(UsageError, match=r"int in \[1, inf\)"):
        spec.validate(0, "k")


def test_choices_suggest_a_close_match():
    spec = Param("ring", choices=("ring", "grid"))
    with pytest.raises(UsageError, match="Did you mean 'ring'"):
        spec.validate("rign", "mixture[layout]")


def test_list_parameter_takes_a_flat_list():
    spec = Param([0.1, 0.5], type=list)
    assert spec.validate([1, 2], "m[pis]") == [1, 2]
    with pytest.raises(UsageError):
        spec.validate([[1], [2]], "m[pis]")


def test_validate_params_fills_defaults_and_names_unknown_parameters():
    declared = {"pi": probability(0.5), "lr": positive(0.01)}
    assert validate_params("jspi", declared, {"pi": 0.1}) == {"pi": 0.1, "lr": 0.01}
    with pytest.raises(
        UsageError, match=r"jspi has no parameter 'po'\. Did you mean 'pi'\?.*pi, lr"
    ):
        validate_params("jspi", declared, {"po": 0.1})


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, 99999999999999999999, 10**5000],
    ids=["2^63", "-2^63-1", "1e20", "5001 digits"],
)
def test_integers_beyond_64_bits_are_refused_whatever_the_bounds(value):
    with pytest.raises(UsageError, match="integers in 64 bits"):
        Param(10, low=1).validate(value, "gaussian[n_train]")
    with pytest.raises(UsageError, match="integers in 64 bits"):
        Param([1], type=list).validate([1, value], "m[pis]")
    assert Param(0).validate(2**63 - 1, "t[seed]") == 2**63 - 1


@pytest.mark.parametrize("value", [10**400, 10**5000, float("inf")], ids=["1e400", "1e5000", "inf"])
def test_a_float_parameter_refuses_numbers_too_large_for_a_float(value):
    with pytest.raises(UsageError, match=r"expected float in \(0, inf\)"):
        positive(1.0).validate(value, "gaussian[a]")
    assert positive(1.0).validate(10**30, "gaussian[a]") == 1e30


def test_an_upper_bound_is_shown_as_a_whole_number():
    spec = Param(10_000, low=1, high=10_000_000)
    assert spec.describe() == "int in [1, 10000000]"
    with pytest.raises(UsageError, match=r"=10000001 is not a valid value: expected int in \[1, 1"):
        spec.validate(10_000_001, "gaussian[n_train]")
