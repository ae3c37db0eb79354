"""cliff.estimate against direct sums of the probabilities (math.fsum), torch input, and the
error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cliff
from cliff import estimate
from tests._reference import kary_lambda_star


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


# --- lambda* with every valid token its own class --------------------------------------
def _by_token_classes(lt: np.ndarray, lr: np.ndarray, valid: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Classes built one position at a time: each valid token, then the summed rest."""
    t = [*np.exp(lt[valid]), np.exp(lt[~valid]).sum()]
    r = [*np.exp(lr[valid]), np.exp(lr[~valid]).sum()]
    return np.array([t]), np.array([r])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), v=st.integers(3, 8), sharp=st.floats(0.5, 4.0),
       c=st.floats(1.2, 20.0), low=st.sampled_from([None, 0.0]))
def test_by_token_matches_brute_force(seed: int, v: int, sharp: float, c: float,
                                      low: float | None) -> None:
    """Positions with different numbers of valid tokens in one batch, each against a
    scan-plus-bisection on the K-ary definition over classes assembled independently."""
    rng = np.random.default_rng(seed)
    lt, lr = _logits(seed, 4, v, sharp), _logits(seed + 1, 4, v, sharp)
    valid = np.zeros((4, v), dtype=bool)
    for i, n in enumerate(rng.integers(1, v, size=4)):
        valid[i, rng.choice(v, n, replace=False)] = True
    got = cliff.lambda_star_by_token(lt, lr, valid, c, c_low=low)
    cl = 1 / c if low is None else low
    for i in range(4):
        t, r = _by_token_classes(lt[i], lr[i], valid[i])
        if np.isclose(np.log(t) - np.log(r), (np.log(t) - np.log(r))[0, 0], atol=1e-9).all():
            assert got[i] == math.inf  # teacher and reference proportional: never exits
            continue
        want = kary_lambda_star(t, r, c, cl)[0]
        if math.isinf(want):  # no exit up to lambda - 1 = 1e4 in the scan
            assert got[i] - 1 > 1e4
            continue
        assert got[i] - 1 == pytest.approx(want - 1, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), v=st.integers(3, 8), sharp=st.floats(0.5, 6.0),
       c=st.floats(1.2, 20.0))
def test_by_token_never_above_pooled_without_floor(seed: int, v: int, sharp: float,
                                                   c: float) -> None:
    """With c_low = 0 splitting the valid class never raises lambda* (the statement in the
    docstring of lambda_star_by_token); with identical within-class shares it equals it."""
    lt, lr = _logits(seed, 8, v, sharp), _logits(seed + 1, 8, v, sharp)
    valid = np.arange(v) < max(1, v // 2)
    split = cliff.lambda_star_by_token(lt, lr, valid, c, c_low=0.0)
    pooled = estimate(lt, lr, valid).solve_kary(c, c_low=0.0).lambda_star
    assert (split <= pooled * (1 + 1e-9)).all()
    # calibrated: the reference's valid tokens in the teacher's proportions
    lr_cal = lr.copy()
    est = estimate(lt, lr, valid)
    lr_cal[:, valid] = (lt[:, valid] - est.log_p[:, None]) + est.log_b[:, None]
    split_cal = cliff.lambda_star_by_token(lt, lr_cal, valid, c)
    np.testing.assert_allclose(split_cal, estimate(lt, lr_cal, valid).solve_kary(c).lambda_star,
                               rtol=1e-9)


def test_by_token_inputs() -> None:
    lt = np.log([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
    lr = np.log([[0.3, 0.3, 0.4], [0.3, 0.3, 0.4]])
    valid = np.array([True, True, False])
    ids = cliff.lambda_star_by_token(lt, lr, [np.array([0, 1]), np.array([0, 1])], 5.0)
    np.testing.assert_array_equal(ids, cliff.lambda_star_by_token(lt, lr, valid, 5.0))
    both = lt.copy(), lr.copy()  # a valid token at -inf under both models is dropped
    ext_t = np.concatenate([both[0], np.full((2, 1), -np.inf)], 1)
    ext_r = np.concatenate([both[1], np.full((2, 1), -np.inf)], 1)
    ext_v = np.array([True, True, False, True])
    np.testing.assert_array_equal(cliff.lambda_star_by_token(ext_t, ext_r, ext_v, 5.0),
                                  cliff.lambda_star_by_token(lt, lr, valid, 5.0))
    one = ext_r.copy()
    one[:, 3] = np.log(1e-3)
    one[:, 2] = np.log(0.4 - 1e-3)
    with pytest.raises(ValueError, match="valid token 3 at position 0"):
        cliff.lambda_star_by_token(ext_t, one, ext_v, 5.0)
    with pytest.raises(ValueError, match="reference_logprobs"):
        cliff.lambda_star_by_token(lt, lr + 0.1, valid, 5.0)
    with pytest.raises(ValueError, match="same columns"):  # gathered, different widths
        cliff.lambda_star_by_token(lt, lr[:, :2], [np.array([0, 1])] * 2, 5.0, complete=False)
