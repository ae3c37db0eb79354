"""Log-probs given as torch tensors are reduced on their device and agree with numpy.

The numpy path (scipy's ``logsumexp`` over the whole float64 array on the host) is the
reference.  The device path sums in another order, so agreement is to a few ulps: every
probability, complement, threshold and bound to ``1e-12`` relative; a log mass to ``1e-12``
relative or ``1e-15`` absolute (the log of a mass within 1e-9 of 1 is itself ~1e-9, known
only to an ulp of the sum, ~1e-16).  Inputs are float64 tensors unless said otherwise; a
float32 tensor is compared with numpy on the same values (its float64 cast is exact).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.special import log_softmax

import cliff

torch = pytest.importorskip("torch")

RTOL, ATOL_LOG = 1e-12, 1e-15


def close(a: Any, b: Any, path: str = "") -> None:
    """Nested plain values equal: floats to RTOL (logs near 0 to ATOL_LOG), the rest exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (a == b or (math.isnan(a) and math.isnan(b))
                or abs(a - b) <= RTOL * abs(a) + ATOL_LOG), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def random_batch(rng: np.random.Generator, shape: tuple[int, ...], v: int, sharp: float,
                 absent: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher and reference log-probs ``shape + (v,)``, a valid mask with a share
    ``absent`` of all-False rows (whose log-probs are zeros, not a distribution)."""
    lt = log_softmax(rng.normal(size=(*shape, v)) * sharp, axis=-1)
    lr = log_softmax(rng.normal(size=(*shape, v)) * sharp / 2, axis=-1)
    valid = rng.random((*shape, v)) < 0.2
    valid[..., 0] = True
    valid[..., -1] = False
    gone = rng.random(shape) < absent
    valid[gone] = False
    lt[gone], lr[gone] = 0.0, 0.0
    return lt, lr, valid


@pytest.mark.parametrize("seed", range(4))
def test_estimate_and_by_token_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lt, lr, valid = random_batch(rng, (6, 5), 300, 2.0 + seed)
    a = cliff.estimate(lt, lr, valid)
    b = cliff.estimate(torch.tensor(lt), torch.tensor(lr), torch.tensor(valid))
    for name in ("log_p", "log_p_rest", "log_b", "log_b_rest", "p", "b", "p_rest", "b_rest"):
        close(getattr(a, name).tolist(), getattr(b, name).tolist(), name)
    close(cliff.lambda_star_by_token(lt, lr, valid, 5.0).tolist(),
          cliff.lambda_star_by_token(torch.tensor(lt), torch.tensor(lr), valid, 5.0).tolist())
    ids = [np.flatnonzero(row) for row in valid.reshape(-1, valid.shape[-1])]
    close(cliff.lambda_star_by_token(lt, lr, ids, 2.0, c_low=0.0).tolist(),
          cliff.lambda_star_by_token(torch.tensor(lt), torch.tensor(lr), ids, 2.0,
                                     c_low=0.0).tolist())


def test_gathered_columns_and_float32() -> None:
    rng = np.random.default_rng(7)
    lt, lr, valid = random_batch(rng, (4,), 50, 3.0)
    top = np.sort(lt, axis=-1)[:, -20:]  # gathered columns: mass < 1, the rest missing
    a = cliff.estimate(top, top - 0.5, valid[:, :20], complete=False)
    b = cliff.estimate(torch.tensor(top), torch.tensor(top - 0.5), valid[:, :20],
                       complete=False)
    close(a.log_p_rest.tolist(), b.log_p_rest.tolist())
    close(a.log_b_rest.tolist(), b.log_b_rest.tolist())
    t32 = torch.tensor(lt, dtype=torch.float32)
    host = t32.double().numpy()
    close(cliff.estimate(host, lr, valid).log_p.tolist(),
          cliff.estimate(t32, torch.tensor(lr), valid).log_p.tolist())


def test_tail_far_below_double_resolution_survives() -> None:
    v = 64
    lt = np.full((2, v), -80.0)  # tail 62 e^-80 ~ 1e-33
    lt[:, 0] = 0.0
    lt -= np.logaddexp.reduce(lt, axis=-1, keepdims=True)
    lr = log_softmax(np.random.default_rng(0).normal(size=(2, v)), axis=-1)
    valid = np.arange(v) < 1
    a = cliff.estimate(lt, lr, valid)
    b = cliff.estimate(torch.tensor(lt), torch.tensor(lr), valid)
    assert b.log_p_rest[0] == pytest.approx(math.log(63) - 80.0, rel=1e-12)
    close(a.log_p_rest.tolist(), b.log_p_rest.tolist())
    deep = lt.copy()
    deep[1, 1:] = -800.0  # e^-800 underflows: summed again with a shift, then refused
    with pytest.raises(ValueError) as host:
        cliff.estimate(deep, lr, valid)
    with pytest.raises(ValueError) as device:
        cliff.estimate(torch.tensor(deep), torch.tensor(lr), valid)
    assert str(device.value) == str(host.value) and "-795.85686527" in str(host.value)


@pytest.mark.parametrize("estimator", ["per_context", "pooled"])
def test_scheduler_state_agrees_with_absent_contexts(estimator: str) -> None:
    rng = np.random.default_rng(11)
    kw: dict[str, Any] = {"c": 5.0, "mode": "per_position", "estimator": estimator,
                          "window": 200}
    host = cliff.LambdaScheduler(1.6, **kw)
    device = cliff.LambdaScheduler(1.6, **kw)
    for step in range(4):
        lt, lr, valid = random_batch(rng, (30, 3), 200, 3.0, absent=0.25)
        ls = log_softmax(rng.normal(size=lt.shape), axis=-1)
        la = host.update(lt, lr, valid, student_logprobs=ls)
        lb = device.update(torch.tensor(lt, dtype=torch.float64), torch.tensor(lr), valid,
                           student_logprobs=torch.tensor(ls))
        close(np.asarray(la).tolist(), np.asarray(lb).tolist(), f"lambda at {step}")
    close(json.loads(json.dumps(host.state_dict())), json.loads(json.dumps(device.state_dict())))
    close(host.state(), device.state())


def test_errors_are_the_numpy_ones() -> None:
    rng = np.random.default_rng(3)
    lt, lr, valid = random_batch(rng, (3, 2), 20, 2.0)
    cases = []
    bad = lt.copy()
    bad[1, 0, 4] = np.nan
    cases.append((bad, lr, valid))
    bad = lr.copy()
    bad[2, 1, 7] = np.inf
    cases.append((lt, bad, valid))
    cases.append((lt, lr - 0.1, valid))  # not normalised
    cases.append((lt, lr, np.ones(7, bool)))  # does not broadcast
    dead = valid.copy()
    dead[0, 1] = True  # every column valid: no rest class
    cases.append((lt, lr, dead))
    for t, r, m in cases:
        with pytest.raises(ValueError) as host:
            cliff.LambdaScheduler(1.5, c=5.0).update(t, r, m)
        with pytest.raises(ValueError) as device:
            cliff.LambdaScheduler(1.5, c=5.0).update(torch.tensor(t), torch.tensor(r),
                                                     torch.tensor(m))
        assert str(device.value) == str(host.value)
    absent = valid.copy()
    absent[1, 0] = False
    bad = lt.copy()
    bad[1, 0, 2] = np.nan  # NaN is refused in an absent context too
    with pytest.raises(ValueError, match=r"entry \(1, 0, 2\) is np.float64\(nan\)"):
        cliff.LambdaScheduler(1.5, c=5.0).update(torch.tensor(bad), torch.tensor(lr), absent)


def test_model_log_probs_at_contract_positions() -> None:
    """The scheduler fed two small Qwen3s' log-probs at the contract's positions of JSON
    answers: the calibration's scorer (``position_logprobs``, float32 rows) host against
    device, and the whole ``(B, T, V)`` log-probs through ``PositionBatch.update``."""
    from cliff.internal import left_pad, position_logprobs
    from validate.llm_check.checkpoints import answer, schema, train_bpe
    from validate.llm_check.models import TinyQwen3, new_model

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    texts = [answer([int(i) for i in rng.permutation(4)]) for _ in range(40)]
    tok = train_bpe(texts * 5, 300)
    eos, pad = int(tok.eos_token_id), int(tok.pad_token_id)
    teacher = new_model(len(tok), pad, eos, TinyQwen3(), 0).eval()
    reference = new_model(len(tok), pad, eos, TinyQwen3(), 1).eval()
    finder = cliff.ContractPositions(schema(4), tok, len(tok), [eos])
    answers = [tok.encode(t) + [eos] for t in texts[:16]]
    gen = left_pad([a[::-1] for a in answers], pad)[0].flip(1)  # right-padded
    mask = left_pad([[1] * len(a) for a in answers], 0)[0].flip(1)
    prompts, prompt_mask = left_pad([tok.encode("rank:")] * len(answers), pad)
    batch = finder.find(gen, mask)
    assert batch.status == ("complete",) * len(answers) and batch.n_slots >= 16
    rows, steps = torch.tensor(batch.rows.ravel()), torch.tensor(batch.steps.ravel())
    shape = (*batch.rows.shape, len(tok))
    lt = position_logprobs(teacher, prompts, prompt_mask, gen, rows, steps).reshape(shape)
    lr = position_logprobs(reference, prompts, prompt_mask, gen, rows, steps).reshape(shape)
    host = cliff.LambdaScheduler(1.5, c=5.0, mode="per_position")
    device = cliff.LambdaScheduler(1.5, c=5.0, mode="per_position")
    for _ in range(3):
        a = host.update(lt.double().numpy(), lr.double().numpy(), batch.valid())
        b = device.update(lt, lr, batch.valid("cpu"))  # float32 tensors, reduced where they are
        close(np.asarray(a).tolist(), np.asarray(b).tolist())
    close(host.state_dict(), device.state_dict())

    with torch.no_grad():  # the same positions taken from the whole completions' log-probs
        ids = torch.cat([prompts, gen], 1)
        attn = torch.cat([prompt_mask, torch.ones_like(gen)], 1)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        n = gen.shape[1]
        full_t, full_r = (torch.log_softmax(m(input_ids=ids, attention_mask=attn,
                                               position_ids=pos).logits[:, -n - 1 : -1], -1)
                          for m in (teacher, reference))
    whole = cliff.LambdaScheduler(1.5, c=5.0, mode="per_position")
    for _ in range(3):
        batch.update(whole, full_t, full_r)
    # another forward (all logits, not the kept ones): float32 agreement, not float64
    assert whole.state()["lambda_star_quantile"] == pytest.approx(
        host.state()["lambda_star_quantile"], rel=1e-4)
    assert whole.state()["contexts"] == host.state()["contexts"]
