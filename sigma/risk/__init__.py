"""Risk: data cleaning and anomaly detection on the way in (more limits land here later).

Import from the submodules (``sigma.risk.cleaner``, ``sigma.risk.anomaly``).
"""
