"""`sigma venue`: a local exchange that speaks Binance spot's and Upbit's public protocols.

ccxt and ccxt.pro talk to it unchanged, over real HTTP and WebSocket, once their ``urls`` point
at it (:func:`sigma.venues.emulator.server.ccxt_config`). It is for rehearsing a strategy
against a venue's rules before real money, and it is where every venue test of SIGMA runs.

Layout: ``model`` (value types), ``venue`` (matching, balances, fees: protocol-neutral),
``accounts``, ``klines``, ``prices`` (the price path), ``journal`` (state across restarts),
``faults`` and ``limits`` (rate limits), ``binance*``/``upbit*`` (the protocols' front ends, each
with its own table of what is modelled), ``server`` (one port for both, admin routes),
``config``.

What the core models, whichever protocol is spoken:

| behaviour | how the venue does it | not modelled |
|---|---|---|
| order book | synthetic levels around the last price of the price path (``spread_bps`` at the top, ``level_bps`` apart, ``level_qty`` each); participants' resting limits added at their prices in the depth | other participants' flow; participants' orders do not trade with each other |
| market orders | walk the synthetic levels (what one takes stays taken until the next tick); what the book cannot fill expires | price-time queue against real depth |
| limit orders | take what crosses at placement (taker), rest the remainder (GTC) or expire it (IOC); FOK fills whole or expires; LIMIT_MAKER refused if it would take | real queue position: the resting orders a tick trades at or through (on touch) fill up to ``level_qty`` a side in all, best price then oldest first |
| stop orders | trigger on the last traded price (stop-loss: buy at or above, sell at or below; take-profit the other way); a stop that would trigger at once is refused | trailing stops, OCO lists |
| balances | free and locked per asset and API key; a bid locks price×qty (Upbit: plus the fee), an ask the quantity; a market order is checked against free funds | margin, lending, withdrawals, deposits |
| fees | maker/taker rates per protocol; Binance takes the fee from what the trade brings in (base on a buy, quote on a sell), Upbit always in KRW; rounded up to 8 decimals | BNB discounts, VIP tiers by volume (set the rates instead) |
| filters | price range and tick (a ladder for Upbit's KRW market), quantity range and step, minimum and maximum notional (market orders too, at the last price), open orders per market | percent-price bands, iceberg parts, trailing-delta filters |
| client order ids | an id of an open order cannot be reused (Binance); an Upbit identifier never can; lookups by id return the latest order | — |
| state | in memory, or journalled to ``--state FILE`` (each change flushed before its reply), so a venue restarted mid-order still knows every order, fill and balance | the price path restarts from its seed (the tape is not journalled) |
| faults | added latency, 5xx, 429 storms, a reply lost after the order was accepted, every WebSocket cut, stale market streams, clock skew: set at start and switched while running (``/sigma/faults``) | packet loss, half-open TCP |
"""  # noqa: E501 - table rows cannot wrap
