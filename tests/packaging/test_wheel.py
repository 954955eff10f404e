"""The distribution works outside the checkout: the wheel carries its Lua scripts, vendored data and
the service's browser assets, and an installed ``taxview`` runs a real-data backtest from them and
finds the assets the console and ``/docs`` serve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_its_data_and_runs_a_backtest_from_a_fresh_venv(tmp_path):
    dist, src = tmp_path / "dist", tmp_path / "src"  # built from a copy: no build/ left in the checkout
    files = subprocess.check_output(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, text=True).split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("taxview-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "taxview/data/sp500_dataset.csv.gz",
        "taxview/data/sp500_index.csv.gz",
        "ledger/lua/commit.lua",
        "taxview/morning/page.py",
        # the service's browser assets (served at /static: no CDN)
        "cluster/service/static/README.md",
        "cluster/service/static/console.js",
        "cluster/service/static/chartjs/chart.umd.min.js",
        "cluster/service/static/chartjs/LICENSE.md",
        "cluster/service/static/swagger-ui/swagger-ui-bundle.js",
        "cluster/service/static/swagger-ui/swagger-ui.css",
        "cluster/service/static/swagger-ui/favicon-32x32.png",
        "cluster/service/static/swagger-ui/LICENSE",
        "cluster/service/static/swagger-ui/NOTICE",
    } <= names
    # a fresh venv: the wheel installed in it, the dependencies seen through a path file (the
    # project venv's site-packages, whose editable hook for the checkout is not run from there)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        cwd=tmp_path,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.check_output(
        [python, "-c", "import cluster; print(cluster.__file__)"], text=True, cwd=tmp_path, env=env
    )
    assert str(ROOT) not in where  # the installed copy, not the checkout
    urls = subprocess.check_output(  # the installed app's asset URLs: files there, hashed
        [python, "-c", "from cluster.service.assets import asset_url as u; "
         "print(u('chartjs/chart.umd.min.js'), u('swagger-ui/swagger-ui-bundle.js'), u('console.js'))"],
        text=True, cwd=tmp_path, env=env,
    ).split()  # fmt: skip
    assert [u.split("?v=")[0] for u in urls] == [
        "/static/chartjs/chart.umd.min.js",
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/console.js",
    ]
    out = tmp_path / "bt"
    subprocess.run(
        [env_dir / "bin" / "taxview", "backtest", "--data", "sp500-20", "--start", "2022-12-01", "--end", "2022-12-28",
         "--rebalance", "weekly", "--out", str(out)],
        check=True,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics and (out / "report.html").is_file()
