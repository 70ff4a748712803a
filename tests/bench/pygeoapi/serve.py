"""Serve SYNTHETIC benchmark cubes with pygeoapi 0.21 (its Flask app under gunicorn), for tests/bench/test_bench_subsets.py.

Run with the pygeoapi venv (``tests/bench/pygeoapi/setup_venv.sh`` makes it), not the portal's::

    .venv-pygeoapi/bin/python tests/bench/pygeoapi/serve.py --port 5001 --workdir /tmp/pgapi \
        --begin 2000-01-01 --end 2002-12-31 --store time=/path/layout1.zarr --store map=/path/layout0.zarr

renders ``config.template.yml`` into ``WORKDIR/config.yml`` (one collection per ``--store NAME=PATH``, each with
an OGC API - Coverages provider ``xarray`` and an OGC API - EDR provider ``xarray-edr``), writes the OpenAPI
document pygeoapi needs (``pygeoapi openapi generate``), then replaces itself with gunicorn serving
``pygeoapi.flask_app:APP`` on 127.0.0.1:PORT (``--workers`` processes, default 2, as the portal's bench
server). Stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def render(port: int, stores: dict[str, str], begin: str, end: str) -> dict:
    text = (HERE / "config.template.yml").read_text().replace("${PORT}", str(port))
    config = yaml.safe_load(text)
    template = config["resources"].pop("__STORE__")
    for name, path in stores.items():
        resource = copy.deepcopy(template)
        resource["extents"]["temporal"] = {  # datetimes, not strings: pygeoapi checks requests against them
            "begin": dt.datetime.fromisoformat(begin).replace(tzinfo=dt.UTC),
            "end": dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC),
        }
        for provider in resource["providers"]:
            provider["data"] = path
        config["resources"][name] = resource
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--store", action="append", required=True, help="NAME=PATH of a Zarr store or NetCDF file")
    parser.add_argument("--begin", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    stores = dict(s.split("=", 1) for s in args.store)
    args.workdir.mkdir(parents=True, exist_ok=True)
    config_path, openapi_path = args.workdir / "config.yml", args.workdir / "openapi.yml"
    config_path.write_text(yaml.safe_dump(render(args.port, stores, args.begin, args.end), sort_keys=False))
    env = dict(os.environ, PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(openapi_path))
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "pygeoapi"), "openapi", "generate", str(config_path), "--output-file", str(openapi_path)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    os.execve(
        str(bin_dir / "gunicorn"),
        [
            str(bin_dir / "gunicorn"),
            "pygeoapi.flask_app:APP",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--timeout",
            "600",
        ],
        env,
    )


if __name__ == "__main__":
    main()
