"""The service's ingress settings (``cluster.serve.ingress_environment``/``ingress_env``): what Ray
must find in its environment for HAProxy mode, refused clearly when it cannot work, and nothing
left behind. No Ray started here (tests/integration/test_serve.py serves through both)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster import serve
from cluster.serve import ingress_env, ingress_environment
from taxview.core.errors import InputError

HAPROXY_SOCKET_MAX = 97  # haproxy 2.6: "socket path ... too long (max 97)"
RAY_NODE_ID = "b62127bbb39212e0c4a8f61b854a1ceb3f2287fdaee5229958dba09a"  # 56 hex characters


def test_the_proxy_needs_nothing_and_an_unknown_ingress_names_the_field(tmp_path):
    assert ingress_environment("proxy", tmp_path) == {}
    with pytest.raises(InputError) as e:
        ingress_environment("nginx", tmp_path)
    assert e.value.field == "ingress" and "proxy, haproxy" in str(e.value)


def test_haproxy_missing_is_a_clear_error_and_leaves_nothing(monkeypatch):
    monkeypatch.setattr(serve.shutil, "which", lambda *a, **k: None)
    before = set(Path("/tmp").glob("tvh-*"))
    with pytest.raises(InputError) as e, ingress_env("haproxy"):
        pass
    assert e.value.field == "ingress" and "apt-get install haproxy" in str(e.value)
    assert set(Path("/tmp").glob("tvh-*")) == before and "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ


def test_haproxy_mode_is_set_for_the_block_with_short_paths_and_free_ports_then_undone():
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ
    with ingress_env("haproxy") as env:
        assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        assert os.access(env["RAY_SERVE_HAPROXY_BINARY_PATH"], os.X_OK)  # ./dev installs Debian's haproxy
        ports = [int(env[k]) for k in env if k.endswith("_PORT")]
        assert len(ports) == len(set(ports)) == 4 and 8404 not in ports  # not HAProxy's fixed defaults
        state = Path(env["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"]).parent
        assert state.is_dir()
        for key in ("RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"):
            path = Path(env[key])  # Ray puts each under a directory named by its node id
            assert len(str(path.parent / RAY_NODE_ID / path.name)) <= HAPROXY_SOCKET_MAX
    assert not state.exists() and not any(k in os.environ for k in env)
