"""Helpers every part shares: input checks (``checks``), atomic writes (``atomic``),
blockwise threaded evaluation (``blocks``) and an exact two-product (``exact``)."""
