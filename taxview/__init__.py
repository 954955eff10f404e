"""taxview: the command line and the analyses (backtest, transition, reports) over solver/, ledger/
and cluster/, and ``taxview.core`` — the errors, money, tax dates and records they all share."""
