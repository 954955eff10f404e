"""Entry point for ``ray submit ray-cluster.yaml cluster/submit.py -- --date D --market M --out O``:
the nightly rebalance on the cluster this runs on. The ledger's URL: ``--redis``/``--redis-url-file``
if given, else ``~/.taxview-redis-url`` (mode 0600, written by ray-cluster.yaml), else
``$TAXVIEW_REDIS_URL``."""

import sys
from pathlib import Path

from taxview.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    url_file = Path.home() / ".taxview-redis-url"
    if not any(a.split("=")[0] in ("--redis", "--redis-url-file") for a in args) and url_file.is_file():
        args = ["--redis-url-file", str(url_file), *args]
    sys.exit(main(["rebalance", "--address", "auto", *args]))
