"""cliff.estimate against direct sums of the probabilities (math.fsum), torch input, and the
error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cliff
from cliff._estimate import estimate


def _logits(seed: int, n: int, v: int, sharp: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, v))
    x[:, 0] += sharp
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


@given(seed=st.integers(0, 2**31), v=st.integers(3, 200), sharp=st.floats(0.0, 30.0))
def test_masses_equal_direct_sums(seed: int, v: int, sharp: float) -> None:
    """log p, log(1-p), log b from logsumexp equal log of fsum over the probabilities
    (rel 1e-12; fsum is exact up to one rounding)."""
    lt, lr = _logits(seed, 4, v, sharp), _logits(seed + 1, 4, v, 1.0)
    valid = np.zeros(v, bool)
    valid[: 1 + seed % (v - 1)] = True
    e = estimate(lt, lr, valid)
    for i in range(4):
        pt = np.exp(lt[i])
        want_rest = math.fsum(pt[~valid]) / math.fsum(pt)
        assert e.p_rest[i] == pytest.approx(want_rest, rel=1e-12)
        assert e.b[i] == pytest.approx(math.fsum(np.exp(lr[i])[valid])
                                       / math.fsum(np.exp(lr[i])), rel=1e-12)


def test_ids_and_torch_input() -> None:
    torch = pytest.importorskip("torch")
    lt, lr = _logits(0, 3, 10, 3.0), _logits(1, 3, 10, 0.0)
    ids = [np.array([0, 2]), np.array([0]), np.array([1, 5, 9])]
    mask = np.zeros((3, 10), bool)
    for i, row in enumerate(ids):
        mask[i, row] = True
    a = estimate(lt, lr, mask)
    b = estimate(torch.tensor(lt, dtype=torch.float32), torch.tensor(lr), ids)
    np.testing.assert_allclose(a.log_p, b.log_p, rtol=1e-5)
    np.testing.assert_allclose(a.log_b, b.log_b, rtol=1e-12)


def test_solve_and_two_class_view_agree() -> None:
    """Estimate.solve (Bernoulli) and Estimate.solve_kary (two classes, log space) agree
    (rel 1e-12 on lambda - 1)."""
    lt, lr = _logits(2, 6, 50, 8.0), _logits(3, 6, 50, 2.0)
    e = estimate(lt, lr, np.arange(50) < 2)
    a, k = e.solve(5.0), e.solve_kary(5.0)
    np.testing.assert_allclose(k.lambda_star - 1, a.lambda_star - 1, rtol=1e-12)
    assert (a.binding == np.where(k.binding == 1, "tail", "mode")).all()
    np.testing.assert_allclose(
        a.lambda_star, cliff.solve(e.p, e.b, 5.0).lambda_star, rtol=0, atol=0)


def test_tail_below_double_resolution() -> None:
    """A teacher tail mass of 1e-30 is kept exactly; solve refuses, solve_kary works."""
    lt = np.log(np.array([[1.0, 5e-31, 5e-31]]))
    lt[0, 0] = np.log1p(-1e-30)
    lr = np.log(np.array([[0.5, 0.25, 0.25]]))
    e = estimate(lt, lr, np.array([True, False, False]))
    assert e.p_rest[0] == pytest.approx(1e-30, rel=1e-12)
    with pytest.raises(ValueError, match="rounds to 1"):
        e.solve(5.0)
    # independent: the Bernoulli tail-binding threshold 1 + log1p((c-1)/p)/D with
    # D = logit p - logit b, p -> 1: log((c-1+p)/p) = log c, D = log(1/1e-30) - 0
    ls = e.solve_kary(5.0).lambda_star[0]
    assert ls - 1 == pytest.approx(math.log(5.0) / (30 * math.log(10)), rel=1e-12)


@pytest.mark.parametrize("kw, match", [
    ({"lt": np.log([[0.5, 0.3, 0.1]])}, "normalised"),
    ({"lt": np.array([[0.0, -np.inf, -np.inf]])}, "no representable mass on the rest"),
    ({"lt": np.array([[np.nan, -1.0, -1.0]])}, "log-probabilities"),
    ({"lr": np.log([[0.5, 0.5]])}, "same shape"),
    ({"valid": np.array([True, False])}, "does not broadcast"),
    ({"valid": [np.array([0, 7])]}, "column ids"),
])
def test_bad_input(kw: dict[str, object], match: str) -> None:
    args = {"lt": np.log([[0.6, 0.3, 0.1]]), "lr": np.log([[0.4, 0.4, 0.2]]),
            "valid": np.array([True, True, False])}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        estimate(args["lt"], args["lr"], args["valid"])


def test_gathered_columns() -> None:
    """complete=False: missing mass goes to the rest class."""
    lt = np.log([[0.7, 0.2]])
    lr = np.log([[0.3, 0.3]])
    e = estimate(lt, lr, np.array([True, False]), complete=False)
    assert e.p[0] == pytest.approx(0.7) and e.p_rest[0] == pytest.approx(0.3)
    assert e.b[0] == pytest.approx(0.3) and e.b_rest[0] == pytest.approx(0.7)
