"""The extrapolation cliff on a real Qwen3-architecture model (``python -m validate.llm_check``).

Modules, in the order a run uses them:

* :mod:`~validate.llm_check.cli` - the command line: parses :class:`~validate.llm_check.
  config.Config` (:mod:`~validate.llm_check.config`; its field docstrings are the ``--help``)
  and runs each unit, a configuration and a warm-start seed;
* :mod:`~validate.llm_check.unit` - one unit end to end: the order of work;
* the task and the models: :mod:`~validate.llm_check.task` (the ranking task, its JSON
  contract), :mod:`~validate.llm_check.tokenizer`, :mod:`~validate.llm_check.prompts`,
  :mod:`~validate.llm_check.models` (tiny Qwen3, SFT), :mod:`~validate.llm_check.warmstart`
  (teacher and warm start of each configuration);
* before the sweep: :mod:`~validate.llm_check.measurement` (p, b and the windows),
  :mod:`~validate.llm_check.grid`, :mod:`~validate.llm_check.gate`,
  :mod:`~validate.llm_check.plan` (the predictions and the planned runs),
  :mod:`~validate.llm_check.sealing` (the prediction sealed by sha256, the report checked
  against it);
* the sweep: :mod:`~validate.llm_check.opd` (the clipped G-OPD loop, Adam or SGD),
  :mod:`~validate.llm_check.scheduled_lambda`, :mod:`~validate.llm_check.jobs` (the planned
  runs in worker processes), :mod:`~validate.llm_check.mechanism` (measured at every
  evaluation: masses against the clip-safe edges, clip shares, first violations, masses at
  id positions) and :mod:`~validate.llm_check.resume` (``--resume``: an interrupted sweep
  continued from its finished runs);
* after the sweep: :mod:`~validate.llm_check.analysis` (the report), built on
  :mod:`~validate.llm_check.onset` (onset, bootstrap), :mod:`~validate.llm_check.
  preregistered_tests` (tests (a), (b), (c)) and :mod:`~validate.llm_check.verdict_rules`
  (HIT / MISS / INCONCLUSIVE / VOID), drawn by :mod:`~validate.llm_check.figure`;
* the budget ladder: :mod:`~validate.llm_check.ladder` (the trend of the losing mass over
  the budget per lambda, its onset, the mean-field clock and the test's power);
* separate commands: :mod:`~validate.llm_check.summary` (reports as one table),
  :mod:`~validate.llm_check.checkpoints` (demo checkpoints), and
  :mod:`~validate.llm_check.vocab` (the real Qwen3 vocabulary, optional).
"""
