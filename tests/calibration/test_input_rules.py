"""``cliff.estimate``, ``cliff.lambda_star_by_token`` and the scheduler take their inputs under
``cliff.solve``'s rules: complex, boolean or string log-probs and integer 0/1 masks are refused
by name, never cast."""

from __future__ import annotations

import numpy as np
import pytest

import cliff

LT = np.log(np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]))
LR = np.log(np.array([[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]]))
VALID = np.array([[True, False, False], [True, True, False]])


def _estimate(lt: object, lr: object, valid: object) -> object:
    return cliff.estimate(lt, lr, valid)


def _by_token(lt: object, lr: object, valid: object) -> object:
    return cliff.lambda_star_by_token(lt, lr, valid, 5.0)


def _scheduler(lt: object, lr: object, valid: object) -> object:
    s = cliff.LambdaScheduler(2.0, c=5.0)
    return s.update(np.asarray(lt)[None] if isinstance(lt, np.ndarray) else lt,
                    np.asarray(lr)[None] if isinstance(lr, np.ndarray) else lr,
                    np.asarray(valid)[None] if isinstance(valid, np.ndarray) else valid)


TARGETS = [_estimate, _by_token]


@pytest.mark.parametrize("fn", TARGETS)
def test_complex_logprobs_are_refused(fn: object) -> None:
    with pytest.raises(ValueError, match="teacher_logprobs must be real numbers, got complex"):
        fn(LT + 0j, LR, VALID)  # type: ignore[operator]
    with pytest.raises(ValueError, match="reference_logprobs must be real numbers"):
        fn(LT, LR.astype(np.complex128), VALID)  # type: ignore[operator]


@pytest.mark.parametrize("fn", TARGETS)
def test_boolean_and_string_logprobs_are_refused(fn: object) -> None:
    with pytest.raises(ValueError, match="teacher_logprobs must be real numbers, got boolean"):
        fn(LT < -1, LR, VALID)  # type: ignore[operator]
    with pytest.raises(ValueError, match="teacher_logprobs"):
        fn(LT.astype(str), LR, VALID)  # type: ignore[operator]


@pytest.mark.parametrize("fn", TARGETS)
def test_an_integer_mask_of_the_logprobs_shape_is_refused(fn: object) -> None:
    for mask in (VALID.astype(int), np.where(VALID, 2, 0)):
        with pytest.raises(ValueError, match="valid: an integer array .* is ambiguous"):
            fn(LT, LR, mask)  # type: ignore[operator]


@pytest.mark.parametrize("fn", TARGETS)
def test_the_id_form_and_the_boolean_form_agree(fn: object) -> None:
    ids = [np.array([0]), np.array([0, 1])]
    a, b = fn(LT, LR, VALID), fn(LT, LR, ids)  # type: ignore[operator]
    if isinstance(a, cliff.Estimate):
        assert np.array_equal(a.log_p, b.log_p) and np.array_equal(a.log_b, b.log_b)
    else:
        assert np.array_equal(a, b)


def test_the_scheduler_refuses_complex_logprobs() -> None:
    with pytest.raises(ValueError, match="teacher_logprobs must be real numbers, got complex"):
        _scheduler(LT + 0j, LR, VALID)


def test_the_scheduler_refuses_an_integer_mask() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        _scheduler(LT, LR, VALID.astype(np.int64))


def test_torch_logprobs_follow_the_same_rules() -> None:
    """The device path (torch tensors, reduced where they are) refuses what the numpy path
    refuses, with the same words: complex is not cast with a warning."""
    torch = pytest.importorskip("torch")
    lt, lr = torch.from_numpy(LT), torch.from_numpy(LR)
    valid = torch.from_numpy(VALID)
    for bad, kind in ((lt.to(torch.complex128), "complex"), (lt < -1, "boolean"),
                      (lt.to(torch.int64), "int64")):
        with pytest.raises(ValueError, match=f"teacher_logprobs must be real numbers, got "
                                             f"{kind}"):
            _scheduler(bad[None], lr[None], valid[None])
