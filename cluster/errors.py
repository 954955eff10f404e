"""Errors of the cluster package (under the project base ``TaxviewError``)."""

from __future__ import annotations

from taxview.core.errors import TaxviewError


class ClusterError(TaxviewError):
    """The run itself cannot go on (no accounts, a shard failing again and again)."""
