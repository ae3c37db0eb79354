"""The prompts of a unit: training prompts for OPD, estimation prompts for p and b, and the
evaluation prompts every run is scored on - synthetic, or split from ``--data``."""

from __future__ import annotations

import numpy as np

from cliff.internal import read_jsonl
from validate.llm_check.config import Config
from validate.llm_check.task import Prompt, make_prompts

__all__ = ["load_prompts", "prompt_sets"]


def load_prompts(path: str) -> list[Prompt]:
    """Real prompts from JSONL: ``{"prompt": str, "relevance": [K numbers]}`` per line."""
    prompts = []
    for n, obj in read_jsonl(path, "--data", '{"prompt": str, "relevance": [numbers]}'):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) \
                or not isinstance(obj.get("relevance"), list):
            raise ValueError(f"--data line {n}: needs 'prompt' (str) and 'relevance' (list)")
        prompts.append(Prompt(obj["prompt"], tuple(float(v) for v in obj["relevance"])))
    ks = {len(p.relevance) for p in prompts}
    if len(ks) != 1 or not 1 <= next(iter(ks)) <= 10:
        raise ValueError(f"--data: every line needs the same K in [1, 10] relevances, got {ks}")
    return prompts


def prompt_sets(cfg: Config, warm_seed: int) -> tuple[int, list[Prompt], list[Prompt],
                                                       list[Prompt]]:
    """K and the training, estimation and (shared) evaluation prompts of warm-start seed
    ``warm_seed``: ``cfg.data`` split in thirds in a seeded order, or fresh synthetic ones."""
    rng = np.random.default_rng(warm_seed)
    if cfg.data:
        prompts = load_prompts(cfg.data)
        order = rng.permutation(len(prompts))
        third = max(1, len(prompts) // 3)
        est = [prompts[i] for i in order[:third]]
        ev = [prompts[i] for i in order[third : 2 * third]] or est
        train = [prompts[i] for i in order[2 * third :]] or est
        return len(prompts[0].relevance), train, est, ev
    train = make_prompts(4096, cfg.k, cfg.levels, rng)
    est = make_prompts(cfg.estimate_rollouts, cfg.k, cfg.levels, rng)
    ev = make_prompts(cfg.eval_rollouts, cfg.k, cfg.levels, rng)
    return cfg.k, train, est, ev
