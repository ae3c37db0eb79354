"""``python -m derivations [--tex-only] [--out DIR]``: write the derivation PDF."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from derivations.pdf import DEFAULT_OUT, build, summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m derivations",
        description="Generate the derivation document of cliff from its SymPy expressions: "
                    "LaTeX always, PDF when pdflatex is installed.")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="output folder (default: derivations/build)")
    parser.add_argument("--tex-only", action="store_true", help="write the .tex, skip LaTeX")
    parser.add_argument("--figures", default=None,
                        help="folder whose <name>.pdf figures are included (default: figures/)")
    args = parser.parse_args(argv)
    res = build(args.out, tex_only=args.tex_only, figures_dir=args.figures)
    print(summary(res))
    return 1 if res.nonzero else 0


if __name__ == "__main__":
    sys.exit(main())
