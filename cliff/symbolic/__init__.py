"""SymPy source of every closed form in :mod:`cliff` (one file per model).

* ``cliff.symbolic.bernoulli``: the Bernoulli (one structural position) model
  (derivations/model.md, up to "Thresholds");
* ``cliff.symbolic.kary``: the K-ary (listwise) model;
* ``cliff.symbolic.budget``: the finite step budget.

Numeric code never retypes a formula: it lambdifies the expressions defined here, and the
derivation PDF (``python -m derivations``) prints them with ``sympy.latex``.
"""
