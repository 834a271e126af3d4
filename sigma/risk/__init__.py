"""Risk: pre-trade limits, the drawdown breaker and kill switch, and the price checks that judge
ticks (anomaly detection, feed health).

Import from the submodules (``sigma.risk.limits``, ``sigma.risk.anomaly``).
"""
