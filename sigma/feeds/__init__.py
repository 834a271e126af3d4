"""Market data in: history loaders (CSV, Parquet, PostgreSQL), validation, resampling and a
synthetic market generator.

Import from the submodules (``sigma.feeds.loaders``, ``sigma.feeds.synthetic``, ...) so that a
process which only needs the live WebSocket client does not pay for importing pandas.
"""
