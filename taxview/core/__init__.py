"""What every room shares: the project's errors, exact money, the long-term rule, the shared
records (lot, trade, restrictions) and strict CSV reading. Imports nothing from solver/, ledger/,
cluster/ — they all import it."""
