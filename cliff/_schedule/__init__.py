"""The online lambda scheduler: the rule (``scheduler``: :class:`cliff.LambdaScheduler`), one
update's contexts reduced to class masses (``batch``), and its two estimators of a lower
bound on lambda* (``quantile``: per context; ``pooled``: EMA class masses)."""
