"""taxview: the command line and the analyses (backtest, transition, reports) over solver/, ledger/ and cluster/."""
