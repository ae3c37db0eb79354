"""Trainers of other libraries with lambda kept below the extrapolation cliff.

Each integration is its own module, imported by name (``import cliff.integrations.trl``), so
``import cliff`` and ``import cliff.integrations`` import none of those libraries.

* :mod:`cliff.integrations.trl`: ``GOPDConfig`` and ``GOPDTrainer``, clipped G-OPD on TRL's
  on-policy distillation trainer (needs the ``trl`` extra).
"""
