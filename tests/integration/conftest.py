"""Fixtures the integration modules share: a real local Ray and a small synthetic market directory,
one of each per module."""

from __future__ import annotations

import pytest
import ray

from solver.market import synthesize, write_market


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("market")
    write_market(synthesize(names=60, days=300, factors=8, seed=11), d)
    return d
