"""The OPD loop on tiny models (validate.llm_check.opd): the scheduler hook sees every
structural position of the batch (validate.llm_check.scheduled_lambda), saved checkpoints
reload offline and take an OPD step, --optimizer sgd is one plain SGD step on the
REINFORCE loss, and an update that reuses the behaviour pass equals one that runs its own."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cliff
from validate.llm_check.config import Config
from validate.llm_check.models import (
    TinyQwen3,
    left_pad,
    load_checkpoint,
    new_model,
    sample,
    token_logprobs,
    train_sft,
)
from validate.llm_check.opd import Models, encode, make_optimizer, run_opd, update
from validate.llm_check.scheduled_lambda import scheduler_lambda_fn
from validate.llm_check.task import POSITION_TYPES, make_prompts
from validate.llm_check.tokenizer import build_tokenizer, token_info
from validate.llm_check.warmstart import Recipe, sft_batches


def test_scheduler_feeds_every_context_with_absent_slots_masked() -> None:
    # Every viable position of the batch reaches the scheduler: S = the largest type count,
    # and the padded slots have all-False valid rows.
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 0).eval()
    seen = []

    class Spy:  # what cliff.PositionBatch.update reads of a LambdaScheduler
        lambda_ = None
        target_lambda, mode = 1.5, "global"

        def __init__(self, *a: Any, **kw: Any) -> None:
            pass

        def grow(self, n_positions: int) -> None:
            pass

        def update(self, t: Any, r: Any, valid: Any) -> float:  # torch tensors, on their device
            seen.append((tuple(t.shape), np.asarray(valid).copy()))
            return 1.0

    vocab = {s: tok.convert_tokens_to_ids(s) for s in "[],0123456789"}
    rows = [[vocab[c] for c in "[0,1,2,3,4,5,6,7]"] + [info.eos_id],
            [vocab[c] for c in "[3,1"] + [info.eos_id] * 14]
    gen = torch.tensor([r + [info.pad_id] * (18 - len(r)) for r in rows])
    ids, mask = left_pad([[vocab["["]]] * 2, info.pad_id)
    original = cliff.LambdaScheduler
    try:
        cliff.LambdaScheduler = Spy  # type: ignore[misc,assignment]
        fn = scheduler_lambda_fn(Config(), info, 8, 1.5, tok, len(tok))
    finally:
        cliff.LambdaScheduler = original  # type: ignore[misc]
    fn(0, Models(m, m, m), ids, mask, gen)
    (shape, valid), = seen
    present = valid.any(axis=-1)  # (S, P)
    counts = dict(zip(POSITION_TYPES, present.sum(axis=0).tolist(), strict=True))
    # full row: open, 8 ids, 7 seps, close, end; cut row "[3,1" + EOS: open, 2 ids, the
    # separator after "3" and the EOS where a separator was due (a viable prefix: visited)
    assert shape[:2] == (10, len(POSITION_TYPES))
    assert counts == {"open": 2, "id": 10, "sep": 9, "close": 1, "end": 1}


def test_saved_checkpoints_reload_and_take_an_opd_step(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    for name, seed in (("student", 1), ("teacher", 2)):
        m = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), seed)
        train_sft(m, sft_batches(tok, 8, 3, 16, Recipe(0.0, 0.0)), 5, 3e-3, seed, "sft")
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    student, s_tok = load_checkpoint(str(tmp_path / "student"), "--student")
    teacher, _ = load_checkpoint(str(tmp_path / "teacher"), "--teacher")
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    reference = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 1)
    reference.load_state_dict(student.state_dict())
    before = {k: v.clone() for k, v in student.state_dict().items()}
    cfg = Config(opd_steps=1, rollouts=8, eval_rollouts=8)
    prompts = make_prompts(16, 8, 3, np.random.default_rng(0))
    info2 = token_info(s_tok, student.config.vocab_size)
    r = run_opd(Models(teacher, student, reference), prompts, prompts[:8], s_tok, info2, cfg, 8,
                1.5, seed=0)
    assert len(r["history"]) == 1 and 0.0 <= r["final"]["parse_rate"] <= 1.0
    changed = any(not torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert changed


def test_one_sgd_step_is_theta_minus_lr_times_the_reinforce_gradient() -> None:
    # --optimizer sgd: one pass of plain SGD on the REINFORCE loss -sum(A log pi) / sum(mask),
    # with no gradient-norm clip (the gradient here is far above max_grad_norm) and no second
    # epoch; Adam, the default, moves the weights elsewhere.
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    student = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 4).eval()
    prompts = make_prompts(6, 8, 3, np.random.default_rng(1))
    ids, mask = encode(prompts, tok, info, "cpu")
    gen, live = sample(student, ids, mask, 10, [info.eos_id], torch.Generator().manual_seed(0))
    b_mask = live.float()
    with torch.no_grad():
        b_logprobs = token_logprobs(student, ids, mask, gen)
    b_adv = 50.0 * torch.randn(gen.shape, generator=torch.Generator().manual_seed(1))
    cfg = dataclasses.replace(Config(), optimizer="sgd", opd_lr=0.01)
    theta = {n: p.detach().clone() for n, p in student.named_parameters()}
    student.train()
    loss = -(b_adv * token_logprobs(student, ids, mask, gen) * b_mask).sum() / b_mask.sum()
    grads = torch.autograd.grad(loss, list(student.parameters()))
    student.eval()
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    assert norm > 10 * cfg.max_grad_norm  # a clip would have rescaled the step
    want = {n: theta[n] - cfg.opd_lr * g
            for (n, _), g in zip(student.named_parameters(), grads, strict=True)}
    opt = make_optimizer(student, cfg)
    assert type(opt) is torch.optim.SGD
    update(student, opt, cfg, ids, mask, gen, b_logprobs, b_adv, b_mask)
    for n, p in student.named_parameters():
        torch.testing.assert_close(p.detach(), want[n], rtol=0, atol=1e-7, msg=n)
    adam = new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 4)
    adam.load_state_dict({n: theta[n] for n in theta}, strict=False)
    adam_cfg = dataclasses.replace(cfg, optimizer="adam")
    update(adam, make_optimizer(adam, adam_cfg), adam_cfg, ids, mask, gen, b_logprobs, b_adv,
           b_mask)
    assert any(not torch.allclose(p, want[n], atol=1e-5) for n, p in adam.named_parameters())


def test_an_sgd_run_trains_the_student() -> None:
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    models = [new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), s).eval()
              for s in (1, 2, 1)]
    before = {k: v.clone() for k, v in models[1].state_dict().items()}
    cfg = Config(opd_steps=2, rollouts=4, eval_rollouts=4, optimizer="sgd", opd_lr=0.05)
    prompts = make_prompts(8, 8, 3, np.random.default_rng(0))
    r = run_opd(Models(models[0], models[1], models[2]), prompts, prompts[:4], tok, info, cfg,
                8, 1.2, seed=0, progress=False)
    assert len(r["history"]) == 2
    assert any(not torch.equal(before[k], v) for k, v in models[1].state_dict().items())


def test_reusing_the_behaviour_pass_moves_the_weights_as_a_fresh_forward_does() -> None:
    # run_opd hands update() the behaviour pass's log-probs with their graph, so the first
    # pass runs no forward of its own; the weights after the update must be those of the
    # update that runs its own forward, bit for bit, for Adam (two PPO passes) and SGD.
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    prompts = make_prompts(6, 8, 3, np.random.default_rng(2))
    ids, mask = encode(prompts, tok, info, "cpu")
    for optimizer, lr in (("adam", 1e-2), ("sgd", 0.05)):
        cfg = dataclasses.replace(Config(), optimizer=optimizer, opd_lr=lr)
        fresh, reused = (new_model(len(tok), info.pad_id, info.eos_id, TinyQwen3(), 5).eval()
                         for _ in range(2))
        gen, live = sample(fresh, ids, mask, 10, [info.eos_id],
                           torch.Generator().manual_seed(0))
        b_adv = torch.randn(gen.shape, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            b_logprobs = token_logprobs(fresh, ids, mask, gen)
        update(fresh, make_optimizer(fresh, cfg), cfg, ids, mask, gen, b_logprobs, b_adv,
               live.float())
        first = token_logprobs(reused, ids, mask, gen)  # with grad, as run_opd's pass
        assert torch.equal(first.detach(), b_logprobs)
        update(reused, make_optimizer(reused, cfg), cfg, ids, mask, gen, first.detach(), b_adv,
               live.float(), first)
        moved = False
        for (name, p), q in zip(fresh.named_parameters(), reused.parameters(), strict=True):
            assert torch.equal(p, q), f"{optimizer}: {name} differs"
            moved = moved or not torch.equal(p, dict(new_model(
                len(tok), info.pad_id, info.eos_id, TinyQwen3(), 5).named_parameters())[name])
        assert moved, f"{optimizer}: the update moved no weight"
