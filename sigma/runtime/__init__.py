"""The application layer: the long-running services that run the core on the adapters.

* wiring: `services` (`Services`, what `sigma up` and the one-component commands run, built
  on the `sigma.bootstrap.App`), with the pieces it wires: `bot` (TradingBot), `control`
  (its end of the control channel), `sim` (SimRunner), `recorder`, `market` (the built-in
  market), `prices` (the price filter's references), `worker_tasks`, `ml_gates`, `restore`;
* supervision: `supervisor` (start until listening, restart on death, stop in order);
* the metrics and alert bridge: `telemetry`;
* what operators and the API send the bot: `commands`, `operator`.

They sit outside `engine`/`strategies` because they depend on adapters (bus, store, execution)
and the core must not; the API and the CLI sit above them (see the import-linter contracts in
pyproject.toml).
"""
