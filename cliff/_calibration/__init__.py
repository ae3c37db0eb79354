"""Measuring lambda* on real models: checkpoints and prompts in (``loading``), rollouts and
log-probs (``rollout``, torch), the output contract walked token by token (``contract``,
llguidance) and its position labels (``labels``), the masses ``p`` and ``b`` at each position
(``estimate``), the pass over a prompt set (``run``: :func:`cliff.calibrate`) and its result
(``result``: :class:`cliff.Calibration`)."""
