"""The clipped G-OPD loss of ``cliff.integrations.trl`` on fixed tensors.

Written out by hand from ``derivations/model.md`` ("The clipped advantage"), token by token;
at lambda = 1 with no clip its advantage is on-policy distillation's reverse-KL reward,
which TRL's own IW-OPD loss computes (``(log piT - log pi_rollout).detach()``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from cliff.integrations.trl import GOPDConfig, gopd_advantage, gopd_loss  # noqa: E402

# (B, T) = (2, 3); the last token of row 1 is padding
LOGP = [[-0.2, -3.5, -0.05], [-1.1, -0.01, -7.0]]
TEACHER = [[-0.1, -0.3, -2.6], [-4.0, -0.02, -0.5]]
REFERENCE = [[-0.7, -0.4, -0.1], [-0.9, -0.3, -0.2]]
MASK = [[1, 1, 1], [1, 1, 0]]


def by_hand(lam: float, c: float | None, c_low: float | None) -> tuple[float, list[list[float]]]:
    """Loss and the gradient d loss / d log pi_theta, one token at a time."""
    n = sum(map(sum, MASK))
    total, grad = 0.0, [[0.0] * 3 for _ in range(2)]
    for i in range(2):
        for t in range(3):
            if not MASK[i][t]:
                continue
            ratio = TEACHER[i][t] - LOGP[i][t]
            if c is not None:
                ratio = min(ratio, math.log(c))
            if c_low is not None:
                ratio = max(ratio, math.log(c_low))
            adv = ratio + (lam - 1.0) * (TEACHER[i][t] - REFERENCE[i][t])
            total += -adv * LOGP[i][t]
            grad[i][t] = -adv / n
    return total / n, grad


@pytest.mark.parametrize(("lam", "c", "c_low"), [(1.0, None, None), (1.5, 5.0, 0.2),
                                                 (2.5, 2.0, None), (0.5, None, 0.5)])
def test_loss_is_the_formula_written_out(lam: float, c: float | None, c_low: float | None) -> None:
    logp = torch.tensor(LOGP, dtype=torch.float64, requires_grad=True)
    loss, stats = gopd_loss(logp, torch.tensor(TEACHER, dtype=torch.float64),
                            torch.tensor(REFERENCE, dtype=torch.float64), torch.tensor(MASK),
                            lam, c=c, c_low=c_low)
    loss.backward()
    want, grad = by_hand(lam, c, c_low)
    assert loss.item() == pytest.approx(want, rel=1e-14)
    assert logp.grad is not None
    assert logp.grad.tolist() == [pytest.approx(row, rel=1e-14, abs=0.0) for row in grad]
    ratios = [TEACHER[i][t] - LOGP[i][t] for i in range(2) for t in range(3) if MASK[i][t]]
    high = sum(c is not None and r > math.log(c) for r in ratios)
    low = sum(c_low is not None and r < math.log(c_low) for r in ratios)
    assert (int(stats["tokens"]), int(stats["clipped_high"]), int(stats["clipped_low"])) == (
        5, high, low)


def test_num_items_sets_the_denominator() -> None:
    logp = torch.tensor(LOGP, dtype=torch.float64)
    args = (torch.tensor(TEACHER, dtype=torch.float64),
            torch.tensor(REFERENCE, dtype=torch.float64), torch.tensor(MASK), 1.3)
    mean, _ = gopd_loss(logp, *args, c=5.0, c_low=0.2)
    summed, _ = gopd_loss(logp, *args, c=5.0, c_low=0.2, num_items=torch.tensor(10.0))
    assert summed.item() == pytest.approx(mean.item() * 5 / 10, rel=1e-14)


def test_lambda_one_without_clip_is_trl_iw_opd(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the same logits TRL's IW-OPD loss (gamma = 0: no importance weighting) and the
    G-OPD loss at lambda = 1 without a clip have the same advantage and the same gradient."""
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.iw_opd import IWOPDTrainer

    gen = torch.Generator().manual_seed(0)
    b, t, v = 3, 5, 11
    logits = torch.randn(b, t, v, generator=gen, dtype=torch.float64)
    teacher = torch.log_softmax(torch.randn(b, t, v, generator=gen, dtype=torch.float64), -1)
    tokens = torch.randint(0, v, (b, t), generator=gen)
    labels = tokens.clone()
    labels[2, 3:] = -100  # padding
    mask = labels != -100
    logp_teacher = teacher.gather(-1, tokens[..., None])[..., 0]

    stub = SimpleNamespace(temperature=1.0, iw_opd_gamma=0.0, iw_opd_epsilon=1e-8,
                           model=SimpleNamespace(training=True),
                           _metrics={"train": defaultdict(list)})
    theirs_logits = logits.clone().requires_grad_(True)
    theirs = IWOPDTrainer._compute_iw_opd_loss(stub, theirs_logits, tokens, labels, logp_teacher)
    theirs.backward()

    ours_logits = logits.clone().requires_grad_(True)
    logp = torch.log_softmax(ours_logits, -1).gather(-1, tokens[..., None])[..., 0]
    reference = torch.randn(b, t, generator=gen, dtype=torch.float64)  # lambda = 1: unused
    ours, stats = gopd_loss(logp, logp_teacher, reference, mask, 1.0, c=None, c_low=None)
    ours.backward()

    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert ours_logits.grad is not None and theirs_logits.grad is not None
    torch.testing.assert_close(ours_logits.grad, theirs_logits.grad, rtol=1e-12, atol=1e-15)
    advantage = stats["advantage"][mask]
    torch.testing.assert_close(advantage, (logp_teacher - logp.detach())[mask])
    assert stub._metrics["train"]["iw_opd/mean_advantage"] == [
        pytest.approx(advantage.mean().item(), rel=1e-12)]


def test_gopd_advantage_detaches_the_student() -> None:
    logp = torch.tensor([[-0.5, -2.0]], requires_grad=True)
    adv, high, low = gopd_advantage(logp, torch.zeros(1, 2), torch.zeros(1, 2), 2.0, c=2.0,
                                    c_low=None)
    assert not adv.requires_grad
    assert adv.tolist() == [pytest.approx([0.5, math.log(2.0)])]
    assert high.tolist() == [[False, True]] and low.tolist() == [[False, False]]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target_lambda": -1.0}, "target_lambda"),
    ({"c": 1.0}, "c must be"),
    ({"c_low": 1.5}, "c_low"),
    ({"lambda_schedule": "linear"}, "lambda_schedule"),
    ({"lambda_margin": 1.0}, "lambda_margin"),
    ({"contract_kind": "xml"}, "contract_kind"),
    ({"contract": None}, "needs a clip c .* and a contract"),
    ({"c": None}, "needs a clip c"),
])
def test_config_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"output_dir": "unused", "bf16": False,
                               "contract": {"type": "integer"}, **kwargs}
    with pytest.raises(ValueError, match=match):
        GOPDConfig(**args)  # type: ignore[arg-type]


def test_config_takes_a_contract_and_no_clip_with_a_fixed_lambda() -> None:
    import cliff

    cfg = GOPDConfig(output_dir="unused", bf16=False, contract=cliff.Contract.regex(r"\d+"))
    assert (cfg.contract_kind, cfg.contract, cfg.output_contract().kind) == (
        "regex", r"\d+", "regex")
    fixed = GOPDConfig(output_dir="unused", bf16=False, lambda_schedule="fixed", c=None,
                       c_low=0.0)
    assert fixed.c is None and fixed.c_low is None and fixed.output_contract() is None
