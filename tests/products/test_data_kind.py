"""The data-kind labels (one enum, the same strings as ever) and the direction twin -> generator (no database)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import xarray as xr

from products import generators
from products.data_kind import DataKind


def test_each_data_kind_is_the_string_files_rows_and_summaries_have_always_carried(tmp_path):
    assert [k.value for k in DataKind] == ["real", "synthetic twin", "proxy experiment"]
    assert f"{DataKind.SYNTHETIC}: all stations (pooled)" == "synthetic twin: all stations (pooled)"
    assert json.dumps({DataKind.PROXY: DataKind.REAL}) == '{"proxy experiment": "real"}'
    path = tmp_path / "kind.nc"
    xr.Dataset({"v": ("x", np.zeros(2))}, attrs={"data_kind": DataKind.SYNTHETIC}).to_netcdf(path)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["data_kind"] == "synthetic twin" and type(ds.attrs["data_kind"]) is str


def test_no_generator_imports_a_twin_and_each_twin_imports_its_generator():
    folder = Path(generators.__file__).parent

    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }

    for path in folder.glob("*.py"):
        assert not any(m.startswith("products.generators.twins") for m in imported(path)), path.name
    for path in (folder / "twins").glob("*.py"):
        if path.stem != "__init__":
            assert f"products.generators.{path.stem}" in imported(path), path.name
