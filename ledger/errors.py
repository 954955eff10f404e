"""Errors of the ledger package (under the project base ``TaxviewError``)."""

from __future__ import annotations

from taxview.core.errors import InputError, TaxviewError


class LedgerError(TaxviewError):
    """Base of the ledger's errors."""


class LedgerInputError(InputError, LedgerError):
    """Bad input (a trade, a file row, an account): names the field; nothing was written."""


class CommitRejected(LedgerError):
    """The store refused a commit; ``code`` says why (``WASH_CONFLICT``, ``KEY_REUSED``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class UnknownAccount(LedgerInputError):
    def __init__(self, account: str) -> None:
        super().__init__("account", f"unknown account {account!r}")


class LedgerUnavailable(LedgerError):
    """Redis did not answer within the retry bound (down, restarting, stalled)."""
