"""Fixtures the integration modules share: a real local Ray and a small synthetic market directory
(one per module).

Starting Ray is most of a small integration test's time (about 6 s on 2 cores, and 1.5 s to stop),
so the tests that ask for ``local_ray`` share one: started by the first of them and left up for the
next. A test that starts Ray itself, or a cluster beside it, calls ``ray.shutdown()`` first (a
no-op when none is up); a module outside tests/integration never sees it (``tests/conftest.py``
stops it), nor does the end of the session."""

from __future__ import annotations

import pytest
import ray

from solver.market import synthesize, write_market


@pytest.fixture
def local_ray():
    """A real local Ray of 2 CPUs, shared (see above). The nightly's coordinator uses the Ray it
    finds up and stops only the actors it started, so every test gets all of its CPUs."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("market")
    write_market(synthesize(names=60, days=300, factors=8, seed=11), d)
    return d
