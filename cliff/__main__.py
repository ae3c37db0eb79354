"""Command line: ``python -m cliff {solve,figures} ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cliff import __version__
from cliff._bernoulli import solve
from cliff._io import jsonable

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
    return parser


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
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
