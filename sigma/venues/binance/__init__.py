"""Binance spot through ccxt: only what differs from the shared ccxt adapter
(:mod:`sigma.venues.ccxt`). Build the execution client with
:func:`sigma.venues.binance.factory.make_execution_client`."""
