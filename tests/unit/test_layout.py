"""The pure core imports neither Redis nor Ray (docs/architecture.md): checked in a fresh
interpreter, so nothing imported by another test hides a dependency."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "cluster.step",
        "cluster.sharding",
        "ledger.washsale",
        "ledger.memory",
        "ledger.plan",
        "ledger.corporate",
        "ledger.yearend",
        "taxview.core.tax",
        "solver.solve",
        "taxview.core.money",
    ],
)
def test_the_pure_core_imports_neither_redis_nor_ray(module):
    code = f"import sys, {module}; print(sorted(m for m in ('redis', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"


def test_the_ledger_never_imports_the_optimizer():
    code = "import sys, ledger.store, ledger.memory, ledger.importer; print('solver' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
