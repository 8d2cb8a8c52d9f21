"""Pairs-task tables: generation, validation, exact MI / KL / TV and the SS fixed point."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from gbench_plugins.common.pairs import (
    conditional,
    dirichlet_table,
    joint_from_conditional,
    kl,
    load_table,
    marginals,
    mutual_information,
    ss_fixed_point,
    total_variation,
    validate_table,
)
from scipy import optimize
from scipy.special import log_softmax, rel_entr


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ---------------------------------------------------------------- generation
@pytest.mark.parametrize("k", range(5, 11))
def test_default_tables_have_mutual_information_above_0_3(k: int) -> None:
    for seed in range(50):
        table = dirichlet_table(k, seed)
        validate_table(table)
        assert (table > 0).all()
        assert mutual_information(table) > 0.3, (k, seed)


def test_dirichlet_table_is_seeded_and_dependence_interpolates() -> None:
    assert np.array_equal(dirichlet_table(6, 1), dirichlet_table(6, 1))
    assert not np.allclose(dirichlet_table(6, 1), dirichlet_table(6, 2))
    assert mutual_information(dirichlet_table(6, 1, dependence=0.0)) < 1e-12
    mis = [mutual_information(dirichlet_table(6, 1, dependence=d)) for d in np.linspace(0, 1, 6)]
    assert np.all(np.diff(mis) > 0)
    with pytest.raises(ValueError, match="dependence"):
        dirichlet_table(5, 0, dependence=1.5)
    with pytest.raises(ValueError, match="k must be"):
        dirichlet_table(1, 0)


# ---------------------------------------------------------------- exact quantities
def test_mutual_information_against_entropies() -> None:
    p1 = np.array([0.2, 0.3, 0.5])
    p2 = np.array([0.6, 0.1, 0.3])
    assert abs(mutual_information(np.outer(p1, p2))) < 1e-15
    assert math.isclose(mutual_information(np.eye(4) / 4), math.log(4), rel_tol=1e-12)
    joint = dirichlet_table(5, 3)
    a, b = marginals(joint)
    expected = _entropy(a) + _entropy(b) - _entropy(joint.ravel())
    assert math.isclose(mutual_information(joint), expected, rel_tol=1e-10)


def test_conditional_rows_and_zero_probability_rows() -> None:
    joint = dirichlet_table(4, 0)
    cond = conditional(joint)
    np.testing.assert_allclose(cond.sum(1), 1.0)
    np.testing.assert_allclose(joint_from_conditional(joint.sum(1), cond), joint)
    with_zero = np.array([[0.5, 0.25], [0.0, 0.0]]) / 0.75
    np.testing.assert_allclose(conditional(with_zero)[1], with_zero.sum(0))


def test_kl_is_exact() -> None:
    p, q = dirichlet_table(5, 0), dirichlet_table(5, 1)
    assert math.isclose(kl(p, q), float(rel_entr(p, q).sum()), rel_tol=1e-12)
    assert kl(p, p) == 0.0
    assert kl(np.array([[0.5, 0.5], [0, 0]]), np.array([[1.0, 0], [0, 0]])) == math.inf
    assert kl(np.array([[1.0, 0], [0, 0]]), np.array([[0.5, 0.5], [0, 0]])) == math.log(2)


def test_total_variation() -> None:
    joint = dirichlet_table(5, 2)
    p1 = joint.sum(1)
    a, b = conditional(joint), ss_fixed_point(joint, 0.3)
    # P(x1)-weighted row TV equals the TV between the joints P(x1) A and P(x1) B.
    tv_joint = 0.5 * np.abs(joint_from_conditional(p1, a) - joint_from_conditional(p1, b)).sum()
    assert math.isclose(total_variation(a, b, p1), tv_joint, rel_tol=1e-12)
    assert total_variation(a, a, p1) == 0.0
    assert math.isclose(total_variation(np.eye(3), np.eye(3)[[1, 2, 0]]), 1.0)
    uniform = total_variation(a, b)
    assert math.isclose(uniform, 0.5 * np.abs(a - b).sum(1).mean(), rel_tol=1e-12)


# ---------------------------------------------------------------- scheduled sampling
def _expected_ss_loss(theta: np.ndarray, joint: np.ndarray, eps: float, feed: np.ndarray) -> float:
    """Expected SS loss of a tabular model, x1-logits theta[:k], x2|x1 logits theta[k:].

    Per pair: -log Q(x1) - log Q(x2 | fed), where fed = x1 with probability eps, else
    z ~ feed (the model's own Q(x1), held fixed: no gradient flows through the sampling).
    """
    k = joint.shape[0]
    log_q1 = log_softmax(theta[:k])
    log_q2 = log_softmax(theta[k:].reshape(k, k), axis=1)
    p1, p2 = joint.sum(1), joint.sum(0)
    teacher = -(joint * log_q2).sum()
    own = -(feed[:, None] * p2[None, :] * log_q2).sum()
    return float(-(p1 * log_q1).sum() + eps * teacher + (1 - eps) * own)


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.8, 1.0])
def test_fixed_point_is_the_brute_force_optimum_of_the_ss_loss(eps: float) -> None:
    joint = dirichlet_table(3, 7)
    k = 3
    feed = np.full(k, 1.0 / k)
    theta = np.zeros(k + k * k)
    for _ in range(3):  # the sampling distribution follows the model until self-consistent
        res = optimize.minimize(
            _expected_ss_loss,
            theta,
            args=(joint, eps, feed),
            method="BFGS",
            options={"gtol": 1e-10},
        )
        theta = res.x
        feed = np.exp(log_softmax(theta[:k]))
    q1 = np.exp(log_softmax(theta[:k]))
    q2 = np.exp(log_softmax(theta[k:].reshape(k, k), axis=1))
    np.testing.assert_allclose(q1, joint.sum(1), atol=1e-5)
    np.testing.assert_allclose(q2, ss_fixed_point(joint, eps), atol=1e-5)


def test_fixed_point_endpoints_and_mutual_information() -> None:
    joint = dirichlet_table(6, 0)
    p1, p2 = marginals(joint)
    np.testing.assert_allclose(ss_fixed_point(joint, 1.0), conditional(joint))
    np.testing.assert_allclose(ss_fixed_point(joint, 0.0), np.tile(p2, (6, 1)))
    mis = [
        mutual_information(joint_from_conditional(p1, ss_fixed_point(joint, e)))
        for e in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert mis[0] < 1e-12
    assert math.isclose(mis[-1], mutual_information(joint), rel_tol=1e-12)
    assert np.all(np.diff(mis) > 0)
    with pytest.raises(ValueError, match="eps"):
        ss_fixed_point(joint, -0.1)


# ---------------------------------------------------------------- validation and loading
@pytest.mark.parametrize(
    ("table", "pattern"),
    [
        ([[0.5, 0.5]], r"square, got shape \(1, 2\)"),
        ([0.5, 0.5], r"2-D .* got 1 dimension"),
        (np.full((2, 2, 2), 1 / 8), r"got 3 dimension"),
        ([[1.0]], "at least 2 symbols"),
        ([[0.5, 0.5], [0.5]], "numeric array"),
        ([["a", "b"], ["c", "d"]], "numeric array"),
        ([[0.6, -0.1], [0.25, 0.25]], r"negative entries at index \(0, 1\) .*-0\.1"),
        ([[0.3, 0.3], [0.3, 0.3]], r"sums to 1\.2, not 1 .* divide every entry by 1\.2"),
        ([[float("nan"), 0.5], [0.25, 0.25]], r"NaN entries at index \(0, 0\)"),
        ([[float("inf"), 0.5], [0.25, 0.25]], r"infinite entries at index \(0, 0\)"),
    ],
)
def test_validate_table_messages(table: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        validate_table(table)


def test_validate_table_lists_many_negative_positions() -> None:
    table = -np.ones((4, 4))
    with pytest.raises(ValueError, match=r"\(0, 0\), \(0, 1\).* and 11 more"):
        validate_table(table)


def test_validate_table_accepts_and_copies() -> None:
    raw = [[0.25, 0.25], [0.25, 0.25]]
    out = validate_table(raw)
    assert out.dtype == np.float64 and out.shape == (2, 2)
    assert validate_table(np.array([[1, 0], [0, 0]])).dtype == np.float64


def test_load_table(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps([[0.4, 0.1], [0.1, 0.4]]))
    np.testing.assert_array_equal(load_table(good), [[0.4, 0.1], [0.1, 0.4]])

    with pytest.raises(FileNotFoundError, match=r"missing\.json.*does not exist"):
        load_table(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[[0.5, 0.5],\n [0.5 0.5]]")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON .* line 2"):
        load_table(bad)
    obj = tmp_path / "obj.json"
    obj.write_text('{"table": [[1, 0], [0, 0]]}')
    with pytest.raises(ValueError, match="got a JSON dict"):
        load_table(obj)
    # Hostile tables: nested 200,000 deep (RecursionError in json), booleans and numeric
    # strings that numpy would silently read as numbers.
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match=r"deep\.json: the JSON nests too deeply"):
        load_table(deep)
    for name, table, shown in (
        ("bool", [[True, False], [False, False]], "true"),
        ("text", [[0.5, "0.5"], [0, 0]], '"0.5"'),
    ):
        odd = tmp_path / f"{name}.json"
        odd.write_text(json.dumps(table))
        with pytest.raises(ValueError, match=f"every entry must be a JSON number, not {shown}"):
            load_table(odd)
    unnormalised = tmp_path / "sum.json"
    unnormalised.write_text("[[1, 1], [1, 1]]")
    with pytest.raises(ValueError, match=r"sum\.json: the table sums to 4"):
        load_table(unnormalised)
