"""Fuzz the public surface: valid and invalid draws for every public function and the CLI.

Each target draws its inputs from a seeded ``numpy.random.Generator``: valid points over the
whole float64 domain (masses log-uniform near 0 and near 1, clips from just above 1 to 1e6,
near-ties) and invalid ones (NaN, infinities, out-of-range values, complex numbers, booleans,
strings, ``None``, masked entries, wrong shapes), alone or hidden in one entry of an array.
A draw ends one of three ways, and anything else is a failure:

* **refused**: a ``ValueError`` whose message names the argument (CLI: exit status 2 and an
  ``error: --flag`` line, or argparse's usage error), and the draw was invalid;
* **answered**: a valid draw whose result has no NaN and satisfies the function's invariants;
* **checked**: an answered draw also compared with a reference (a 50-digit evaluation of the
  definitions, a brute-force sum, or another public function that computes the same
  quantity another way).

A valid draw refused, an invalid one answered (coerced), a NaN, a broken invariant, a
reference disagreement or any other exception (a traceback) is recorded with the draw.

Run ``python -m tests.fuzz.harness --draws 100000`` for the counts per target.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np

import cliff
from cliff.cli import main as cli_main
from tests._reference import mp_thresholds

Rng = np.random.Generator


@dataclass
class Tally:
    """Outcomes of one target's draws."""

    tried: int = 0
    refused: int = 0
    answered: int = 0
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what)


# --- draws ---------------------------------------------------------------------------------

def masses(rng: Rng, n: int) -> np.ndarray:
    """Masses in (0, 1), log-uniform in the distance to 0 or to 1 (down to 1e-300)."""
    e = 10.0 ** rng.uniform(-300, 0, n)
    near_one = rng.random(n) < 0.5
    x = np.where(near_one, 1.0 - np.minimum(e, 0.5), np.minimum(e, 0.5))
    x = np.where((x <= 0) | (x >= 1), 0.5, x)
    return x


def caps(rng: Rng, n: int) -> np.ndarray:
    return 1.0 + 10.0 ** rng.uniform(-6, 6, n)


BAD_SCALARS: list[Any] = [math.nan, math.inf, -math.inf, -0.5, 1.5, 0.0, 1.0, 1 + 0j, True,
                          "0.5", None, [], [[0.5], [0.5, 0.5]], np.ma.masked_array([0.5],
                                                                                   mask=[True])]
BAD_CAPS: list[Any] = [math.nan, math.inf, 1.0, 0.5, -5.0, 5 + 0j, True, "5", None]


def bad_array(rng: Rng, good: np.ndarray, bad: Any) -> Any:
    """``good`` with one entry replaced by ``bad`` (as a float array where it is numeric)."""
    if not isinstance(bad, float):
        return bad
    arr = good.copy()
    arr[rng.integers(arr.size)] = bad
    return arr


# --- helpers ---------------------------------------------------------------------------------

def finite_or_inf(x: Any) -> bool:
    arr = np.asarray(x, dtype=np.float64)
    return not np.isnan(arr).any()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is a defect too: it would hide a coercion
        yield


def expect_refusal(t: Tally, call: Callable[[], Any], name: str, what: str) -> None:
    """An invalid draw: it must raise a ValueError naming ``name``."""
    t.tried += 1
    try:
        with quiet():
            call()
    except ValueError as err:
        if name in str(err):
            t.refused += 1
        else:
            t.fail(f"{what}: refused without naming {name!r}: {err}")
    except Exception as err:  # noqa: BLE001 - any other exception is the finding
        t.fail(f"{what}: {type(err).__name__}: {err}")
    else:
        t.fail(f"{what}: answered (coerced) an invalid input")


def answer(t: Tally, call: Callable[[], Any], what: str, n: int = 1) -> Any:
    """A valid draw of ``n`` points: it must answer."""
    t.tried += n
    try:
        with quiet():
            out = call()
    except Exception as err:  # noqa: BLE001
        t.fail(f"{what}: {type(err).__name__}: {err}")
        return None
    t.answered += n
    return out


# --- targets ---------------------------------------------------------------------------------

def fuzz_solve(rng: Rng, draws: int) -> Tally:
    t = Tally()
    batch = 500
    while t.tried < draws:
        n = min(batch, draws - t.tried)
        p, b, c = masses(rng, n), masses(rng, n), caps(rng, n)
        tie = rng.random(n) < 0.1
        b = np.where(tie, np.clip(p * (1 + 10.0 ** rng.uniform(-15, -3, n)), 1e-300,
                                  1 - 1e-16), b)
        r = answer(t, lambda p=p, b=b, c=c: cliff.solve(p, b, c), "solve", n)
        if r is None:
            continue
        ls, lc = np.asarray(r.lambda_star), np.asarray(r.lambda_collapse)
        bad = np.isnan(ls) | np.isnan(lc) | (ls < 1) | (lc < ls)
        if bad.any():
            i = int(np.argmax(bad))
            t.fail(f"solve({p[i]!r}, {b[i]!r}, {c[i]!r}): lambda* {ls[i]}, collapse {lc[i]}")
        for i in rng.choice(n, size=min(2, n), replace=False):  # 50-digit reference
            want, want_c, _, _ = mp_thresholds(float(p[i]), float(b[i]), float(c[i]), None)
            ok = all(_close(float(got), w) for got, w in ((ls[i], want), (lc[i], want_c)))
            t.checked += 1
            if not ok:
                t.fail(f"solve({p[i]!r}, {b[i]!r}, {c[i]!r}) = {ls[i]}, {lc[i]}; 50 digits: "
                       f"{want}, {want_c}")
        for _ in range(max(1, n // 10)):  # invalid draws, one call each
            arg = int(rng.integers(4))
            names = ["p", "b", "c", "c_low"]
            pool = BAD_CAPS if arg == 2 else BAD_SCALARS
            bad = pool[int(rng.integers(len(pool)))]
            if arg == 3 and (bad == 0.0 or bad is None):  # valid floors: 0 and the default
                continue
            args: list[Any] = [p, b, c, None]
            args[arg] = bad_array(rng, np.asarray(args[arg] if arg < 3 else np.full(n, 0.2)),
                                  bad)
            expect_refusal(t, lambda a=args: cliff.solve(a[0], a[1], a[2], c_low=a[3]),
                           names[arg], f"solve with {names[arg]} = {bad!r}")
    return t


def _close(got: float, want: Any) -> bool:
    """Within 1e-10 of the reference in ``lambda - 1`` (inf matches inf)."""
    if want == mpmath.inf or got == math.inf:
        return got == math.inf and want == mpmath.inf
    return abs(mpmath.mpf(got) - want) <= 1e-10 * (want - 1) + 1e-15 * want


def fuzz_solve_kary(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        k = int(rng.integers(2, 7))
        n = min(200, max(1, draws - t.tried))
        tp = rng.dirichlet(np.full(k, 0.5), n) + 1e-12
        tp /= tp.sum(-1, keepdims=True)
        rp = rng.dirichlet(np.full(k, 0.5), n) + 1e-12
        rp /= rp.sum(-1, keepdims=True)
        if k == 2:  # exact pairs (x, 1 - x), near the tie too
            x = np.maximum(tp[:, 0], 1 - tp[:, 0])
            y = np.where(rng.random(n) < 0.3, x * (1 - 10.0 ** rng.uniform(-15, -4, n)),
                         np.maximum(rp[:, 0], 1 - rp[:, 0]))
            y = np.where(y >= 0.5, y, 0.5)
            tp, rp = np.stack([x, 1 - x], -1), np.stack([y, 1 - y], -1)
        c = float(caps(rng, 1)[0])
        r = answer(t, lambda: cliff.solve_kary(tp, rp, c), "solve_kary", n)
        if r is not None:
            ls, lc = np.asarray(r.lambda_star), np.asarray(r.lambda_collapse)
            if (np.isnan(ls) | np.isnan(lc) | (ls < 1) | (lc < ls)).any():
                t.fail(f"solve_kary K={k} c={c}: lambda* {ls}, collapse {lc}")
            if k == 2:  # where t = (x, 1 - x) exactly (x >= 1/2, Sterbenz), and r alike,
                # solve sees the same point, and its closed form is the reference
                ok = ((tp[:, 0] >= 0.5) & (rp[:, 0] >= 0.5) & (tp[:, 1] == 1 - tp[:, 0])
                      & (rp[:, 1] == 1 - rp[:, 0]))
                s = cliff.solve(tp[ok, 0], rp[ok, 0], c).lambda_star
                err = np.abs(np.asarray(s) - ls[ok]) > 1e-12 * (np.asarray(s) - 1) + 4.5e-16
                t.checked += int(ok.sum())
                if np.any(err & np.isfinite(s)):
                    t.fail(f"solve_kary K=2 against solve: {ls[ok][err]} vs {s[err]}")
        for _ in range(max(1, n // 10)):
            bad = [np.array([[0.5, 0.6]]), np.array([[1.0, 0.0]]), np.array([[0.5, np.nan]]),
                   np.array([0.5 + 0j, 0.5]), np.array([[1.0]]), "x", None,
                   np.array([[True, False]])][int(rng.integers(8))]
            expect_refusal(t, lambda b=bad: cliff.solve_kary(b, np.array([[0.5, 0.5]]), 5.0),
                           "teacher_probs", f"solve_kary teacher_probs = {bad!r}")
            cbad = BAD_CAPS[int(rng.integers(len(BAD_CAPS)))]
            expect_refusal(t, lambda cb=cbad: cliff.solve_kary(tp, rp, cb), "c",
                           f"solve_kary c = {cbad!r}")
    return t


def _logprobs(rng: Rng, n: int, v: int) -> np.ndarray:
    logits = rng.normal(0, rng.uniform(0.1, 20), (n, v))
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def _contexts(rng: Rng, n: int, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher and reference log-probs ``(n, v)`` and a valid mask with both classes
    non-empty at every position (column 0 valid, column 1 not)."""
    lt, lr = _logprobs(rng, n, v), _logprobs(rng, n, v)
    valid = rng.random((n, v)) < 0.5
    valid[:, 0], valid[:, 1] = True, False
    return lt, lr, valid


def fuzz_estimate(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        n, v = min(100, max(1, draws - t.tried)), int(rng.integers(3, 40))
        lt, lr, valid = _contexts(rng, n, v)
        est = answer(t, lambda: cliff.estimate(lt, lr, valid), "estimate", n)
        if est is not None:
            want = (np.exp(lt) * valid).sum(-1)  # brute force, float64
            moderate = (want > 1e-6) & (want < 1 - 1e-6)
            t.checked += int(moderate.sum())
            if not np.allclose(est.p[moderate], want[moderate], rtol=1e-9, atol=0):
                t.fail("estimate: p differs from the brute-force sum")
            if np.isnan(est.log_p).any() or np.isnan(est.log_b_rest).any():
                t.fail("estimate: NaN")
        which = int(rng.integers(5))
        bad_lt: Any = [lt + 0j, lt.astype(str), lt < -1, np.where(valid, np.nan, lt), None][which]
        expect_refusal(t, lambda b=bad_lt: cliff.estimate(b, lr, valid), "teacher_logprobs",
                       f"estimate teacher_logprobs kind {which}")
        expect_refusal(t, lambda: cliff.estimate(lt, lr, valid.astype(np.int64)), "valid",
                       "estimate with an integer mask")
    return t


def fuzz_by_token(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        n, v = min(50, max(1, draws - t.tried)), int(rng.integers(3, 12))
        lt, lr, valid = _contexts(rng, n, v)
        c = float(caps(rng, 1)[0])
        got = answer(t, lambda: cliff.lambda_star_by_token(lt, lr, valid, c),
                     "lambda_star_by_token", n)
        if got is not None:
            if np.isnan(got).any() or (got < 1).any():
                t.fail(f"lambda_star_by_token: {got}")
            i = int(rng.integers(n))  # the definition: valid tokens each a class, rest pooled
            keep = np.flatnonzero(valid[i])
            tt = np.append(lt[i, keep], np.logaddexp.reduce(lt[i, ~valid[i]]))
            rr = np.append(lr[i, keep], np.logaddexp.reduce(lr[i, ~valid[i]]))
            want = cliff.solve_kary_log(tt, rr, c).lambda_star
            t.checked += 1
            if not (got[i] == want or abs(got[i] - want) <= 1e-9 * (want - 1)):
                t.fail(f"lambda_star_by_token row {i}: {got[i]} vs solve_kary_log {want}")
        expect_refusal(t, lambda: cliff.lambda_star_by_token(lt, lr, valid, 0.5), "c",
                       "lambda_star_by_token c = 0.5")
        expect_refusal(t, lambda: cliff.lambda_star_by_token(lt + 0j, lr, valid, c),
                       "teacher_logprobs", "lambda_star_by_token complex")
    return t


def fuzz_parse_rate(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        n = min(200, max(1, draws - t.tried))
        p, b = masses(rng, 4), masses(rng, 4)
        lams = 1.0 + 10.0 ** rng.uniform(-6, 3, n)
        got = answer(t, lambda: cliff.predict_parse_rate(lams, p, b, 5.0), "parse rate", n)
        if got is not None:
            g = np.asarray(got)
            if np.isnan(g).any() or (g < 0).any() or (g > 1).any():
                t.fail(f"predict_parse_rate out of [0, 1]: p={p}, b={b}")
            one = np.asarray(cliff.predict_parse_rate(np.array([1.0]), p, b, 5.0))
            t.checked += 1  # at lambda = 1 every position sits at the teacher: prod p
            if not np.isclose(one.ravel()[0], np.prod(p), rtol=1e-9, atol=1e-300):
                t.fail(f"parse rate at lambda = 1: {one} vs prod p = {np.prod(p)}")
        for _ in range(max(1, n // 10)):
            bad = BAD_SCALARS[int(rng.integers(len(BAD_SCALARS)))]
            arr = bad_array(rng, p, bad)
            expect_refusal(t, lambda a=arr: cliff.predict_parse_rate(lams, a, b, 5.0), "p",
                           f"parse rate p = {bad!r}")
            lbad = [math.nan, 0.5, -math.inf, 1 + 0j, "2"][int(rng.integers(5))]
            la = bad_array(rng, lams, lbad)
            expect_refusal(t, lambda a=la: cliff.predict_parse_rate(a, p, b, 5.0), "lambdas",
                           f"parse rate lambdas = {lbad!r}")
    return t


def fuzz_budget(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        n = min(100, max(1, draws - t.tried))
        p, b, c = masses(rng, n), masses(rng, n), caps(rng, n)
        tau = masses(rng, n)
        lr = float(10.0 ** rng.uniform(-4, -1))
        steps = int(rng.integers(1, 500))
        li = answer(t, lambda: cliff.asymptotic_onset(p, b, c, threshold=tau), "onset_inf", n)
        if li is not None and (np.isnan(li).any() or (np.asarray(li) < 1).any()):
            t.fail("asymptotic_onset: NaN or below 1")
        lt = answer(t, lambda: cliff.finite_budget_onset(p[:5], b[:5], c[:5], steps, lr,
                                                         threshold=tau[:5]), "onset_T", 5)
        if lt is not None and (np.isnan(lt).any() or (np.asarray(lt) < 1).any()):
            t.fail("finite_budget_onset: NaN or below 1")
        ext = answer(t, lambda: cliff.budget_extension(p[:5], b[:5], c[:5], steps, lr,
                                                       threshold=tau[:5]), "extension", 5)
        if ext is not None and any(np.isnan(np.asarray(v, dtype=float)).any()
                                   for v in vars(ext).values() if _numeric(v)):
            t.fail("budget_extension: NaN")
        cc = answer(t, lambda: cliff.clip_cross_prediction(p[:5], b[:5], c[:5], 2 * c[:5],
                                                           steps, lr, threshold=tau[:5]),
                    "clip cross", 5)
        if cc is not None and any(np.isnan(np.asarray(v, dtype=float)).any()
                                  for v in vars(cc).values() if _numeric(v)):
            t.fail("clip_cross_prediction: NaN")
        if li is not None and lt is not None:  # a finite budget never breaks before infinity
            early = np.asarray(lt) < np.asarray(li)[:5] * (1 - 1e-9)
            t.checked += 5
            if early.any():
                t.fail(f"finite_budget_onset below asymptotic_onset at {np.flatnonzero(early)}")
        for name, call in (("steps", lambda: cliff.finite_budget_onset(0.9, 0.5, 5.0, 0, lr)),
                           ("steps", lambda: cliff.finite_budget_onset(0.9, 0.5, 5.0, 2.5, lr)),
                           ("lr", lambda: cliff.finite_budget_onset(0.9, 0.5, 5.0, 10, -1.0)),
                           ("threshold", lambda: cliff.asymptotic_onset(0.9, 0.5, 5.0,
                                                                        threshold=1.0)),
                           ("c_new", lambda: cliff.clip_cross_prediction(0.9, 0.5, 5.0, 1.0,
                                                                         10, lr))):
            expect_refusal(t, call, name, f"budget {name}")
    return t


def _numeric(v: Any) -> bool:
    try:
        np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def fuzz_scheduler(rng: Rng, draws: int) -> Tally:
    t = Tally()
    target = 3.0
    s = cliff.LambdaScheduler(target, c=5.0)
    while t.tried < draws:
        n, p, v = 4, 3, 6
        lt = _logprobs(rng, n * p, v).reshape(n, p, v)
        lr = _logprobs(rng, n * p, v).reshape(n, p, v)
        valid = rng.random((n, p, v)) < 0.5
        valid[..., 0], valid[..., 1] = True, False
        lam = answer(t, lambda: s.update(lt, lr, valid), "scheduler", n * p)
        if lam is not None:
            arr = np.asarray(lam, dtype=float)
            t.checked += 1
            if np.isnan(arr).any() or (arr < 1).any() or (arr > target).any():
                t.fail(f"scheduler lambda {lam} outside [1, {target}]")
        expect_refusal(t, lambda: s.update(lt + 0j, lr, valid), "teacher_logprobs",
                       "scheduler complex")
        expect_refusal(t, lambda: s.update(lt, lr, valid.astype(np.int8)), "valid",
                       "scheduler integer mask")
    return t


SOLVE_FLAGS = ["--p", "--b", "--c", "--c-low"]
TOKENS = ["0.5", "0.999", "1e-300", "0.3", "0.9999999", "2", "5", "1e6",  # valid for some flags
          "1", "0", "-1", "nan", "inf", "abc", "", "1j", "0x10", "1e400"]


def fuzz_cli(rng: Rng, draws: int) -> Tally:
    t = Tally()
    while t.tried < draws:
        argv = ["solve"]
        for flag in SOLVE_FLAGS:
            if flag in ("--p", "--b") or rng.random() < 0.5:
                valid = rng.random() < 0.7  # mostly from the valid tokens
                argv += [flag, str(rng.choice(TOKENS[:8] if valid else TOKENS))]
        if rng.random() < 0.3:
            argv.append("--json")
        t.tried += 1
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), quiet():
                code = cli_main(argv)
        except SystemExit as exit_:  # argparse: a usage error, never a traceback
            code = exit_.code if isinstance(exit_.code, int) else 1
            if code == 2:
                t.refused += 1
            else:
                t.fail(f"{argv}: SystemExit {exit_.code}")
            continue
        except Exception as exc:  # noqa: BLE001
            t.fail(f"{argv}: {type(exc).__name__}: {exc}")
            continue
        if code == 2 and err.getvalue().startswith("error: "):
            t.refused += 1
        elif code == 0 and "nan" not in out.getvalue().lower():
            t.answered += 1
            if "--json" in argv:  # the JSON holds a number or the convention's "inf"
                data = json.loads(out.getvalue())
                ok = isinstance(data["lambda_star"], float) or data["lambda_star"] == "inf"
                t.checked += 1
                if not ok:
                    t.fail(f"{argv}: lambda_star {data['lambda_star']!r}")
        else:
            t.fail(f"{argv}: exit {code}, out {out.getvalue()[:80]!r}, err "
                   f"{err.getvalue()[:80]!r}")
    return t


CALIBRATE_FLAGS = {"--c": ["5", "1.5", "1e6"], "--c-low": ["0", "0.2", "0.5"],
                   "--rollouts": ["1", "256"], "--max-new-tokens": ["1", "64"],
                   "--batch-size": ["1", "16"], "--margin": ["0", "0.05", "0.9"]}
CALIBRATE_BAD = ["0", "-1", "1", "nan", "inf", "abc", "", "1.5", "1e400", "0.99999"]


def fuzz_calibrate_cli(rng: Rng, draws: int, folder: Any = None) -> Tally:
    """``python -m cliff calibrate`` with random settings and checkpoints that do not
    exist: a valid command line reaches the checkpoint loader (and fails there, naming the
    folder); an invalid one is refused first, naming its flag."""
    import tempfile
    from pathlib import Path

    t = Tally()
    root = Path(folder or tempfile.mkdtemp())
    prompts, schema = root / "prompts.jsonl", root / "schema.json"
    prompts.write_text('{"prompt": "x"}\n')
    schema.write_text('{"type": "integer"}')
    missing = str(root / "no-such-checkpoint")
    while t.tried < draws:
        argv = ["calibrate", "--teacher", missing, "--reference", missing, "--prompts",
                str(prompts), "--schema", str(schema), "--out", str(root / "out")]
        wrong = None
        for flag, good in CALIBRATE_FLAGS.items():
            if flag != "--c" and rng.random() < 0.5:
                continue
            if rng.random() < 0.2:
                value = str(rng.choice(CALIBRATE_BAD))
                wrong = wrong or flag
            else:
                value = str(rng.choice(good))
            argv += [flag, value]
        if "--c" not in argv:
            argv += ["--c", "5"]
        t.tried += 1
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
                    quiet():
                code = cli_main(argv)
        except SystemExit as exit_:  # argparse: a value of the wrong type
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception as exc:  # noqa: BLE001
            t.fail(f"{argv[10:]}: {type(exc).__name__}: {exc}")
            continue
        text = err.getvalue()
        if code != 2:
            t.fail(f"{argv[10:]}: exit {code}")
        elif "no-such-checkpoint" in text:
            t.answered += 1  # every setting passed; the loader is the first to object
            t.checked += 1
        elif text.startswith("error: --") or "usage:" in text:
            t.refused += 1
        else:
            t.fail(f"{argv[10:]}: {text[:120]!r}")
    return t


TARGETS: dict[str, tuple[Callable[[Rng, int], Tally], float]] = {
    # name: (fuzzer, share of the draws)
    "solve": (fuzz_solve, 0.30),
    "solve_kary": (fuzz_solve_kary, 0.15),
    "estimate": (fuzz_estimate, 0.10),
    "lambda_star_by_token": (fuzz_by_token, 0.05),
    "predict_parse_rate": (fuzz_parse_rate, 0.10),
    "finite_budget_onset, budget_extension, clip_cross_prediction": (fuzz_budget, 0.15),
    "LambdaScheduler.update": (fuzz_scheduler, 0.05),
    "python -m cliff solve": (fuzz_cli, 0.08),
    "python -m cliff calibrate (settings)": (fuzz_calibrate_cli, 0.02),
}


def run(draws: int, seed: int = 0) -> dict[str, Tally]:
    """Every target, ``draws`` in all (split by the shares above), from one seed."""
    rng = np.random.default_rng(seed)
    return {name: fuzz(rng, max(1, int(draws * share)))
            for name, (fuzz, share) in TARGETS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100_000, help="draws in all (default 1e5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    args = ap.parse_args(argv)
    tallies = run(args.draws, args.seed)
    for name, t in tallies.items():
        print(f"{name}: tried {t.tried}, refused {t.refused}, answered {t.answered}, "
              f"checked {t.checked}, failures {len(t.failures)}")
        for f in t.failures:
            print("   ", f)
    return int(any(t.failures for t in tallies.values()))


if __name__ == "__main__":
    raise SystemExit(main())
