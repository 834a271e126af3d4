"""Operations: logging setup, Prometheus metrics, the decision audit trail.

Submodules are imported directly (``from sigma.ops.metrics import Metrics``); this package
imports nothing eagerly so `sigma.ops.logging` stays cheap and free of import cycles.
"""
