"""``python -m validate.llm_check``: the command line of :mod:`validate.llm_check.cli`."""

from validate.llm_check.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
