"""Command line: ``python -m cliff {solve,figures,calibrate} ...`` (see ``--help``); the
entry point ``cliff.cli.main`` is also the ``cliff`` console script."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cliff import __version__
from cliff._calibration.loading import (
    load_model,
    load_tokenizer,
    read_contract,
    read_prompts,
    same_tokenizer,
)
from cliff._calibration.run import calibrate, check_settings
from cliff._theory.bernoulli import solve
from cliff._util.atomic import jsonable

_RUNAWAY = {
    "sharpening": "m -> 1 past lambda_collapse (entropy collapse of the tail)",
    "softening": "m -> 0 past lambda_collapse (the output contract collapses)",
    "neutral": "p == b: extrapolation never moves the fixed point (no threshold)",
}
_BINDING = {
    "tail": "the tail's ratio (1-p)/(1-m) is clipped first",
    "mode": "the mode's ratio p/m is clipped first",
    "none": "no clip ever binds",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cliff",
        description="Clip-safety threshold lambda* of reward-extrapolated on-policy "
                    "distillation (G-OPD / ExOPD) on near-deterministic structured outputs.")
    parser.add_argument("--version", action="version", version=f"cliff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("solve", help="lambda*, lambda_collapse, regime and binding side",
                       description="Thresholds for one structural position (Bernoulli model).")
    s.add_argument("--p", type=float, required=True,
                   help="teacher probability of the contract-valid class, in (0, 1)")
    s.add_argument("--b", type=float, required=True,
                   help="warm-start (G-OPD reference) probability of that class, in (0, 1)")
    s.add_argument("--c", type=float, default=5.0,
                   help="IS clip strength: cap on the teacher/student ratio, in (1, inf); "
                        "default 5 (the paper's value)")
    s.add_argument("--c-low", type=float, default=None,
                   help="lower ratio clip in [0, 1); default 1/c; 0 = no lower clip")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    f = sub.add_parser("figures", help="regenerate figures/ (PNG and PDF)",
                       description="Regenerate every figure in figures/ from the closed forms.")
    f.add_argument("--out", default="figures", help="output folder (default: figures)")
    _calibrate_parser(sub)
    return parser


def _calibrate_parser(sub: Any) -> None:
    k = sub.add_parser(
        "calibrate", help="lambda* of your own teacher and warm start, from the output contract",
        description="Sample rollouts from the warm start (--reference), walk them through the "
                    "output contract, and measure lambda* at every position of the format. "
                    "Writes calibration.json, calibration.md and calibration.png into --out.")
    k.add_argument("--teacher", required=True, help="local checkpoint folder of the teacher")
    k.add_argument("--reference", required=True,
                   help="local checkpoint folder of the warm start (the G-OPD reference pi0)")
    k.add_argument("--prompts", required=True,
                   help='JSONL file, one {"prompt": str} object per line')
    group = k.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", help="JSON schema file of the answer")
    group.add_argument("--grammar", help="Lark grammar file of the answer (llguidance dialect)")
    group.add_argument("--regex", help="regular expression the whole answer matches")
    k.add_argument("--json-labels", action="store_true",
                   help="with --grammar or --regex: the answers are JSON, label positions by "
                        "JSONPath (a schema always is)")
    k.add_argument("--c", type=float, required=True,
                   help="IS clip strength: cap on the teacher/student ratio, > 1 (paper: 5)")
    k.add_argument("--c-low", type=float, default=None,
                   help="lower ratio clip in [0, 1); default 1/c; 0 = no lower clip")
    k.add_argument("--rollouts", type=int, default=256,
                   help="answers sampled from the reference (default 256; prompts cycled)")
    k.add_argument("--max-new-tokens", type=int, default=64,
                   help="most tokens per answer (default 64)")
    k.add_argument("--batch-size", type=int, default=16, help="rollouts per forward (default 16)")
    k.add_argument("--chat-template", action="store_true",
                   help="wrap each prompt in the tokenizer's chat template (generation prompt "
                        "added); default: tokenise the prompt as it is")
    k.add_argument("--device", default="cpu", help="torch device (default cpu)")
    k.add_argument("--device-map", default=None,
                   help="'auto': shard each model over every GPU (accelerate); overrides "
                        "--device")
    k.add_argument("--margin", type=float, default=0.05,
                   help="recommended lambda = 1 + (1 - margin)(binding threshold - 1) "
                        "(default 0.05)")
    k.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    k.add_argument("--out", required=True, help="output folder")


def _calibrate(args: argparse.Namespace) -> str:
    # every argument is checked before a model is loaded or a rollout sampled
    try:
        check_settings(c=args.c, c_low=args.c_low, rollouts=args.rollouts,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       temperature=1.0, margin=args.margin, quantile=0.05)
    except ValueError as err:  # the message starts with the parameter's name
        flag = "--" + str(err).split()[0].replace("_", "-")
        raise ValueError(f"{flag}: {err}") from None
    out = _output_folder(args.out)
    contract = read_contract(schema=args.schema, grammar=args.grammar, regex=args.regex,
                             json_labels=args.json_labels)
    prompts = read_prompts(args.prompts)
    tokenizer = load_tokenizer(args.reference, "--reference")
    same_tokenizer(load_tokenizer(args.teacher, "--teacher"), tokenizer)
    place = {"device": args.device, "device_map": args.device_map}
    teacher = load_model(args.teacher, "--teacher", **place)
    reference = load_model(args.reference, "--reference", **place)
    result = calibrate(teacher, reference, tokenizer, prompts, contract, c=args.c,
                       c_low=args.c_low, rollouts=args.rollouts,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       chat_template=args.chat_template, margin=args.margin, seed=args.seed)
    paths = result.save(out)
    return result.markdown() + "\n" + "\n".join(str(p) for p in paths)


def _output_folder(out: str) -> Path:
    """``--out`` as a folder that can be written: an existing folder, or one that can be
    made (its nearest existing ancestor is a writable folder)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out: {out!r} is a file; give a folder (calibration.json, "
                         f"calibration.md and calibration.png are written into it)")
    for name in ("calibration.json", "calibration.md", "calibration.png"):
        if (path / name).is_dir():
            raise ValueError(f"--out: {str(path / name)!r} is a folder; cannot write the "
                             f"result file there")
    base = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot write {out!r}: {str(base)!r} is not a writable folder")
    return path


def _solve(args: argparse.Namespace) -> str:
    r = solve(args.p, args.b, args.c, c_low=args.c_low)
    if args.json:
        return json.dumps(jsonable(r.to_dict()))
    rows = [
        ("teacher p", f"{r.p:.12g}"), ("warm start b", f"{r.b:.12g}"),
        ("clip c / c_low", f"{r.c:.6g} / {r.c_low:.6g}"),
        ("regime", f"{r.regime}: {_RUNAWAY[r.regime]}"),
        ("binding", f"{r.binding}: {_BINDING[r.binding]}"),
        ("clip-safe m", f"[{r.region_low:.12g}, {r.region_high:.12g}]"),
        ("lambda*", f"{r.lambda_star:.10g}  (fixed point leaves the clip-safe region)"),
        ("lambda_collapse", f"{r.lambda_collapse:.10g}  (no fixed point beyond: runaway)"),
    ]
    return "\n".join(f"{k:<16} {v}" for k, v in rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "solve":
            print(_solve(args))
        elif args.command == "figures":
            from cliff.figures import make_all

            for path in make_all(args.out):
                print(path)
        elif args.command == "calibrate":
            print(_calibrate(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
