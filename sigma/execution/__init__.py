"""Order execution: executor, worker, brokers, settlement ledger, reconciliation."""
