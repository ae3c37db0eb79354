"""The closed forms, lambdified from :mod:`cliff.symbolic`: one structural position
(``bernoulli``: lambda*, lambda_collapse, the fixed points), K classes (``kary``), a finite
training budget (``budget``) and a whole sequence (``sequence``)."""
