"""The project-wide base ``TaxviewError`` and the errors every room raises (bad input, a solve
that failed); ``ledger`` and ``cluster`` derive their own errors from them."""

from __future__ import annotations


class TaxviewError(Exception):
    """Base of every error taxview raises on purpose."""

    def __reduce__(self):  # crosses process boundaries (Ray, worker pools) whatever its __init__
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type, args: tuple, state: dict) -> TaxviewError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(TaxviewError, ValueError):
    """Bad input: names the offending field (and row/symbol where known) so it can be fixed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SolverError(TaxviewError):
    """CLARABEL failed in a way that is not the account's fault (numerical trouble)."""
