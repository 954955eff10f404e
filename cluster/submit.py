"""Entry point for ``ray submit ray-cluster.yaml cluster/submit.py -- --date D --market M --out O``:
the nightly rebalance on the cluster this runs on (the ledger from ``$TAXVIEW_REDIS_URL``)."""

import sys

from cluster.cli import main

if __name__ == "__main__":
    sys.exit(main(["rebalance", "--address", "auto", *sys.argv[1:]]))
