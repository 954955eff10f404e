"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, path: str | None) -> None:
    """Print the result as JSON and, with ``--json FILE``, write it there too."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")
