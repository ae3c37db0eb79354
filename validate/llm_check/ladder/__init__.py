"""The budget ladder: how the losing class's mass falls with the training budget, per lambda.

OPD runs at a constant learning rate, one per (lambda, seed), are each evaluated at budgets
``T, 2T, 4T`` (and maybe ``8T``) steps.  At each evaluation and each structural position type
the measurement is, per evaluation rollout, the mean over that rollout's positions of the
type of the student's mass on the *losing class*: the tail (``1 - m``) where the type
sharpens (``p > b``), the valid mass ``m`` where it softens (``p < b``).

Below the cliff the losing mass settles at a fixed point, so it stops falling with the
budget; past it the dynamics run away and it keeps falling.  The ladder reads the cliff as
the lambda at which the *trend* of the log losing mass over the log budget first falls more
than a margin below its lambda = 1 value.

* :mod:`~validate.llm_check.ladder.statistic` - the data (:class:`LadderData`), the trend,
  the ladder onset and its two-level bootstrap interval;
* :mod:`~validate.llm_check.ladder.clock` - the law on its own clock: the mean-field step
  size fitted to the lambda = 1 runs alone, and the model's predictions on that clock;
* :mod:`~validate.llm_check.ladder.power` - a test that can fail: coverage and power of the
  ladder test on data simulated from the model under a stated noise model.
"""
