"""Long-running services that wire the core to the edges: TradingBot, SimRunner, `sigma up`.

They sit outside `engine`/`strategies` because they depend on adapters (bus, store, execution)
and the core must not.
"""
