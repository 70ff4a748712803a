"""The rates behind docs/SCALE.md: bytes per land cell-day of each product's file and cube stores, the
LightGBM predict rate, and bytes per observation row in PostgreSQL; each extrapolated to the seed scale.

Everything here is SYNTHETIC (made-up fields and rows, labelled so in the files); the point is the cost
of the portal's own writers, stores and tables, measured on this machine in this run:

* :func:`test_storage_per_product_and_layout`: for each of the five products, a SYNTHETIC tile of
  ``BENCH_SCALE_TILE`` x ``BENCH_SCALE_TILE`` cells (default 512) and ``BENCH_SCALE_DAYS`` days (default 64;
  120 months for the monthly product), about 35 % ocean (fill), written with the product writer's settings
  (float32 through :func:`products.methods.chunked.float_grid_variable`: zlib 4, shuffle, chunks
  (1, 256, 256), or (all months, 32, 32) for the monthly water storage; int16 x 0.001 zlib 4 for the 1 km
  soil moisture; int8 zlib 4 for the freeze/thaw state), then its two cube stores
  (:func:`portal.subsets.store.build_stores`: map- and time-chunked Zarr, Blosc zstd 3 + shuffle).
  Fields are smooth made-up climatologies plus spatially correlated daily anomalies (scale ~16 cells) and
  a little cell noise, at full float32 precision as a model writes them; the standard errors are smoother.
  Printed: bytes per land cell-day of each copy (and per variable, from the map store's folders), the seed
  scale (:data:`SEED`) in TiB, the chunk files of the seed's stores, and the rates of the two serial steps
  (writing the file, building the stores; one process each) with the seed's hours at those rates.
* :func:`test_predict_rate_of_the_et_model`: ``model.predict`` of the ET fusion model
  (:data:`products.generators.et_fusion.DEFAULT_PARAMS`, 300 trees, 31 leaves, ``n_jobs`` 2) fitted on
  SYNTHETIC rows (:func:`tests.bench.test_bench_generate.synthetic_model`), on ``BENCH_SCALE_ROWS`` rows
  (default 500,000), best of 3, and the same model compiled by lleaves
  (:mod:`products.methods.compiled_trees`, checked against LightGBM); then core-hours per product at the
  seed scale with each.
* :func:`test_bytes_per_observation_row`: SYNTHETIC rows loaded through
  :func:`ingestion.services.load_point_data` into the test database, two ways: ``bulk``,
  ``BENCH_SCALE_OBSERVATIONS`` rows (default 1,000,000) of new stations in one run (a partition of its own
  since the observations are partitioned), and ``merge``, a run just under
  ``ingestion.services.PARTITION_MIN_ROWS`` (merged into the indexed table); the observation table's heap,
  TOAST and index sizes before and after (summed over its partitions), per row, and at 100 million rows.
  Rolled back afterwards.

Peak resident memory (:mod:`tests.bench.memory`) is printed beside each. Results go to
``var/bench/scale/results.json`` (``BENCH_SCALE_DIR``). Asserts only what could be wrong in the
measurement itself (files written, rows loaded, predictions finite). Run with ``make bench`` or
``.venv/bin/python -m pytest tests/bench/test_bench_scale.py -p no:cacheprovider -q -s``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from products.generators import et_fusion
from products.methods import cf, chunked
from tests.bench import memory

TILE = int(os.environ.get("BENCH_SCALE_TILE", 512))
DAYS = int(os.environ.get("BENCH_SCALE_DAYS", 64))
MONTHS = 120
ROWS = int(os.environ.get("BENCH_SCALE_ROWS", 500_000))
OBSERVATIONS = int(os.environ.get("BENCH_SCALE_OBSERVATIONS", 1_000_000))
OCEAN = 0.35
TIB = 2**40


def _days(first: str, last: str) -> int:
    return (pd.Timestamp(last) - pd.Timestamp(first)).days + 1


SEED = {
    # key: (grid, time steps, land cells, what the count rests on, (lat, lon) cells of the grid, files per step)
    "et_fusion": (
        "0.1 deg daily 1950-2024",
        _days("1950-01-01", "2024-12-31"),
        1.9e6,
        "land cells of a 0.1 deg grid from 60 S (as tests/bench/test_bench_generate.py); 6.48 M cells in all",
        (1800, 3600),
        1,
    ),
    "sm_mlda": (
        "0.25 deg daily 2015-2023",
        _days("2015-01-01", "2023-12-31"),
        0.30e6,
        "land cells of a 0.25 deg grid from 60 S; 1.04 M cells in all",
        (720, 1440),
        1,
    ),
    "freeze_thaw": (
        "25 km daily 2011-2020, Tibetan Plateau box 73-105 E, 25-40 N",
        _days("2011-01-01", "2020-12-31"),
        60 * 128,
        "every cell of the box at 0.25 deg (60 x 128)",
        (60, 128),
        1,
    ),
    "tws_rec": (
        "0.25 deg monthly 1940-2022, two variants (anomaly, detrended/deseasonalised)",
        2 * 83 * 12,
        0.30e6,
        "land cells of a 0.25 deg grid from 60 S; the two variants (two files) counted as twice the months",
        (720, 1440),
        2,
    ),
    "sm_1km": (
        "1 km daily 2000-2020",
        _days("2000-01-01", "2020-12-31"),
        1.35e8,
        "1 km land cells without Antarctica (about 135 million km2 of land); a global 30-arcsecond grid",
        (21600, 43200),
        1,
    ),
}
"""The seed products' scale (../shared/seeds), each as the portal would publish it."""

# What each product's file holds per cell-day: (variable, kind), kind in f4 (float32 estimate), se (float32
# standard error), i2 (int16 x 0.001), i1 (int8 class); and its NetCDF chunks (None: one day of 256 x 256)
PRODUCTS = {
    "et_fusion": ([("et", "f4"), ("et_standard_error", "se")], None),
    "sm_mlda": ([("ssm_nudged", "f4"), ("ssm_nudged_standard_error", "se")], None),
    "freeze_thaw": ([("ft_state", "i1"), ("probability_frozen", "f4")], None),
    "tws_rec": ([("tws_rec", "f4"), ("tws_rec_standard_error", "se")], (MONTHS, 32, 32)),
    "sm_1km": ([("sm", "i2"), ("sm_standard_error", "se")], None),
}


def _out_dir() -> Path:
    path = Path(os.environ.get("BENCH_SCALE_DIR", Path(__file__).resolve().parents[2] / "var" / "bench" / "scale"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(key: str, value) -> None:
    path = _out_dir() / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = value
    path.write_text(json.dumps(results, indent=1))


def _smooth(rng, shape: tuple[int, int], scale: int) -> np.ndarray:
    """A SYNTHETIC smooth field of ``shape``, features about ``scale`` cells wide, mean 0, sd ~1."""
    coarse = rng.normal(size=(max(2, shape[0] // scale + 2), max(2, shape[1] // scale + 2)))
    zoomed = ndimage.zoom(coarse, (shape[0] / (coarse.shape[0] - 1), shape[1] / (coarse.shape[1] - 1)), order=3)
    return zoomed[: shape[0], : shape[1]]


def synthetic_fields(steps: int, rng) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """SYNTHETIC (steps, TILE, TILE) fields for every kind (f4, se, i2, i1), NaN over a made-up ocean."""
    shape = (TILE, TILE)
    land = _smooth(rng, shape, 128)
    land = land > np.quantile(land, OCEAN)
    climate = _smooth(rng, shape, 64)
    estimate = np.empty((steps, *shape), "float32")
    for t in range(steps):
        season = np.sin(2 * np.pi * t / 365.25)
        estimate[t] = 2.5 + climate + 1.2 * season + 0.8 * _smooth(rng, shape, 16) + 0.05 * rng.normal(size=shape)
    estimate[:, ~land] = np.nan
    spread = (0.4 + 0.1 * np.abs(climate))[None] * (1 + 0.1 * np.tanh(estimate - 2.5))
    moisture = np.clip(0.25 + 0.04 * estimate - 0.1, 0.02, 0.6)
    return (
        {
            "f4": estimate,
            "se": spread.astype("float32"),
            "i2": np.where(np.isnan(moisture), -9999, np.round(moisture / 0.001)).astype("int16"),
            "i1": np.where(np.isnan(estimate), -1, estimate < 2.0).astype("int8"),
        },
        land,
    )


def write_product_tile(path: Path, product: str, fields: dict[str, np.ndarray], steps: int) -> None:
    """The SYNTHETIC tile as ``product``'s writer settings store it (see the module docstring)."""
    variables, chunks = PRODUCTS[product]
    chunks = chunks or (1, min(256, TILE), min(256, TILE))
    lat = np.linspace(20 + 0.05, 20 + 0.1 * TILE - 0.05, TILE)
    lon = np.linspace(70 + 0.05, 70 + 0.1 * TILE - 0.05, TILE)
    freq = "MS" if product == "tws_rec" else "D"
    times = pd.date_range("2001-01-01", periods=steps, freq=freq).to_numpy()
    coords = cf.grid_coordinates(
        times,
        lat,
        lon,
        time_step="MS" if freq == "MS" else "1D",
        attrs={"title": f"SYNTHETIC {product} tile for the scale benchmark", "data_kind": "synthetic"},
    )
    with cf.create_grid_netcdf(path, coords) as nc:
        for name, kind in variables:
            values = fields[kind]
            if kind in ("f4", "se"):
                var = chunked.float_grid_variable(nc, name, chunks, {"units": "1"})
                var.set_auto_maskandscale(False)
                var[:] = np.where(np.isnan(values), chunked.FILL_VALUE, values)
            else:
                var = nc.createVariable(
                    name,
                    kind,
                    ("time", "lat", "lon"),
                    zlib=True,
                    complevel=4,
                    shuffle=True,
                    chunksizes=chunks,
                    fill_value=np.array(-9999 if kind == "i2" else -1, dtype=kind)[()],
                )
                if kind == "i2":
                    var.setncatts({"scale_factor": np.float32(0.001), "add_offset": np.float32(0.0)})
                var.set_auto_maskandscale(False)
                var[:] = values


def _seed_chunk_files(steps: int, shape: tuple[int, int], variables: int) -> dict[str, int]:
    """Chunk files of the two Zarr stores of one seed file (:func:`portal.subsets.store.layout_chunks`): one file
    per chunk and variable; chunks holding only fill (ocean) are not written (zarr's ``write_empty_chunks``
    off), so the land share of these is what a store holds."""
    from portal.subsets import store

    sizes = {"time": steps, "lat": shape[0], "lon": shape[1]}
    chunks = store.layout_chunks(sizes)
    return {
        layout: variables * math.prod(math.ceil(sizes[d] / chunks[layout][d]) for d in ("time", "lat", "lon"))
        for layout in store.LAYOUTS
    }


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_storage_per_product_and_layout(tmp_path):
    from portal.subsets import store

    rng = np.random.default_rng(0)
    daily, land = synthetic_fields(DAYS, rng)
    monthly, _ = synthetic_fields(MONTHS, np.random.default_rng(1))
    rows, results = [], {}
    for product, (grid, steps_seed, land_cells, basis, shape, variants) in SEED.items():
        steps = MONTHS if product == "tws_rec" else DAYS
        fields = monthly if product == "tws_rec" else daily
        if product == "tws_rec":
            fields = {k: v[:MONTHS] for k, v in fields.items()}
        nc_path = tmp_path / f"{product}.nc"
        start = time.perf_counter()
        write_product_tile(nc_path, product, fields, steps)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        paths = store.build_stores(nc_path)
        stores_s = time.perf_counter() - start
        land_cell_days = int(land.sum()) * steps
        sizes = {
            "netcdf": nc_path.stat().st_size,
            "map": _folder_bytes(paths["map"]),
            "series": _folder_bytes(paths["series"]),
        }
        per = {k: v / land_cell_days for k, v in sizes.items()}
        per_variable = {  # each variable is a folder of the Zarr stores: what it costs alone
            name: round(_folder_bytes(paths["map"] / name) / land_cell_days, 3) for name, _ in PRODUCTS[product][0]
        }
        raw = sum({"f4": 4, "se": 4, "i2": 2, "i1": 1}[kind] for _, kind in PRODUCTS[product][0])
        seed_cell_days = steps_seed * land_cells
        seed = {k: v * seed_cell_days / TIB for k, v in per.items()}
        files = _seed_chunk_files(steps_seed // variants, shape, len(PRODUCTS[product][0]))
        files = {k: v * variants for k, v in files.items()}
        results[product] = {
            "grid": grid,
            "land_cells": land_cells,
            "land_cells_basis": basis,
            "time_steps": steps_seed,
            "variables": [f"{n} ({k})" for n, k in PRODUCTS[product][0]],
            "raw_bytes_per_cell_day": raw,
            "bytes_per_land_cell_day": {k: round(v, 3) for k, v in per.items()},
            "map_store_bytes_per_land_cell_day_by_variable": per_variable,
            "seed_tib": {k: round(v, 2) for k, v in seed.items()},
            "seed_tib_all_three": round(sum(seed.values()), 2),
            "seed_chunk_files_if_every_chunk_written": files,
            "seed_chunk_files_land_share": {k: round(v * land_cells / math.prod(shape)) for k, v in files.items()},
            "tile": f"{TILE} x {TILE} cells x {steps} steps, {land.mean():.0%} land (SYNTHETIC)",
            "write_s": round(write_s, 2),
            "stores_s": round(stores_s, 2),
            # the writer (one process; NetCDF compression included) and build_stores (one process, block by
            # block): their rates over every cell (ocean included), and the seed at those rates
            "write_cell_days_per_s": round(TILE * TILE * steps / write_s),
            "seed_write_hours_one_process": round(
                steps_seed * math.prod(shape) / (TILE * TILE * steps / write_s) / 3600, 1
            ),
            # build_stores runs in one process, block by block: its rate over every cell (ocean included)
            "stores_cell_days_per_s": round(TILE * TILE * steps / stores_s),
            "seed_stores_hours_one_process": round(
                steps_seed * math.prod(shape) / (TILE * TILE * steps / stores_s) / 3600, 1
            ),
        }
        rows.append(
            f"  {product:12s} raw {raw:2d} B; NetCDF {per['netcdf']:.2f} B, map {per['map']:.2f} B, series "
            f"{per['series']:.2f} B per land cell-day; seed ({seed_cell_days:.3g} land cell-days): NetCDF "
            f"{seed['netcdf']:.2f} TiB + map {seed['map']:.2f} + series {seed['series']:.2f} = "
            f"{sum(seed.values()):.2f} TiB\n"
            f"  {'':12s} map store by variable: "
            + ", ".join(f"{k} {v:.2f} B" for k, v in per_variable.items())
            + f"; written at {TILE * TILE * steps / write_s / 1e6:.2f} M cell-days/s (all cells, one process): seed "
            f"{steps_seed * math.prod(shape) / (TILE * TILE * steps / write_s) / 3600:,.1f} h"
            + f"; both stores built at {TILE * TILE * steps / stores_s / 1e6:.2f} M cell-days/s (all cells, one "
            f"process): seed {steps_seed * math.prod(shape) / (TILE * TILE * steps / stores_s) / 3600:,.1f} h"
            + f"; seed chunk files (every chunk / land share): map {files['map']:,} / "
            f"{files['map'] * land_cells / math.prod(shape):,.0f}, series {files['series']:,} / "
            f"{files['series'] * land_cells / math.prod(shape):,.0f}"
        )
        assert all(v > 0 for v in sizes.values()), (product, sizes)
    results["memory"] = {"peak_rss_mib": round(memory.peak_rss_self() / memory.MIB)}
    _save("storage", results)
    print(f"\n[bench scale] storage per layout, SYNTHETIC tiles, {os.cpu_count()} CPUs:\n" + "\n".join(rows))
    print("  " + memory.summary())


def test_predict_rate_of_the_et_model():
    from tests.bench.test_bench_generate import synthetic_features, synthetic_model

    model = synthetic_model()
    x = synthetic_features(ROWS, np.random.default_rng(2))[list(et_fusion.FEATURES)]
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        predicted = model.predict(x)
        seconds.append(time.perf_counter() - start)
    rate = ROWS / min(seconds)
    n_jobs = et_fusion.DEFAULT_PARAMS["n_jobs"]
    # the same model compiled to machine code (lleaves, products.methods.compiled_trees; compiled once and
    # cached under the bench's folder), same threads, same rows: the engine predict_et_grid(compiled_trees=True)
    # uses when the check against LightGBM passes
    from products.methods import compiled_trees

    start = time.perf_counter()
    trees, why = compiled_trees.compiled_or_none(model, cache_dir=_out_dir() / "lleaves-cache", n_jobs=n_jobs)
    compile_s = time.perf_counter() - start
    compiled_seconds: list[float] = []
    if trees is not None:
        matrix = x.to_numpy(dtype="float64")
        for _ in range(3):
            start = time.perf_counter()
            fast = trees.predict(matrix)
            compiled_seconds.append(time.perf_counter() - start)
        np.testing.assert_allclose(fast, predicted, rtol=1e-9, atol=1e-9)
    compiled_rate = ROWS / min(compiled_seconds) if compiled_seconds else None
    products = {}
    lines = []
    # predictions per cell-day: the estimate, plus the 0.16 / 0.84 quantile pair behind the standard error
    # (et_grid: three LightGBM models of the same size); trees relative to the ET model (300): predict time
    # grows about linearly with the trees, an ASSUMPTION for the others (only the ET model is timed here)
    per_product = {"et_fusion": (3, 300), "sm_mlda": (3, 200), "tws_rec": (3, 300), "sm_1km": (3, 200)}
    for product, (models, n_trees) in per_product.items():
        _, steps, land_cells, *_ = SEED[product]
        predictions = steps * land_cells * models
        core_hours = predictions * n_trees / 300 / rate * n_jobs / 3600
        compiled_hours = predictions * n_trees / 300 / compiled_rate * n_jobs / 3600 if compiled_rate else None
        products[product] = {
            "predictions": predictions,
            "models_per_cell_day": models,
            "trees": n_trees,
            "core_hours_predict_only": round(core_hours),
            "hosts_like_this_for_24h": int(np.ceil(core_hours / n_jobs / 24)),
            "core_hours_compiled_trees": round(compiled_hours) if compiled_hours else None,
        }
        lines.append(
            f"  {product:12s} {predictions:.3g} predictions ({models} models x {n_trees} trees): "
            f"{core_hours:,.0f} core-hours of LightGBM predict alone ({core_hours / n_jobs / 24:,.1f} 2-core hosts "
            f"for 24 h)" + (f"; compiled trees {compiled_hours:,.0f} core-hours" if compiled_hours else "")
        )
    _save(
        "predict",
        {
            "rows": ROWS,
            "seconds": [round(s, 3) for s in seconds],
            "cells_per_s": round(rate),
            "compiled_trees": {
                "cells_per_s": round(compiled_rate) if compiled_rate else None,
                "seconds": [round(t, 3) for t in compiled_seconds],
                "compile_or_cache_load_s": round(compile_s, 1),
                "unavailable_because": why or None,
            },
            "n_jobs": n_jobs,
            "lightgbm": lightgbm.__version__,
            "cpus": os.cpu_count(),
            "products": products,
            "memory": {"peak_rss_mib": round(memory.peak_rss_self() / memory.MIB)},
        },
    )
    print(
        f"\n[bench scale] LightGBM {lightgbm.__version__} predict, ET fusion defaults (300 trees, 31 leaves, "
        f"n_jobs {n_jobs}), {ROWS:,} SYNTHETIC rows, best of 3: {min(seconds):.2f} s = {rate:,.0f} cells/s on "
        f"{os.cpu_count()} CPUs\n"
        + (
            f"  compiled trees (lleaves, n_jobs {n_jobs}, compile or cache load {compile_s:.1f} s): "
            f"{min(compiled_seconds):.2f} s = {compiled_rate:,.0f} cells/s ({compiled_rate / rate:.1f} x LightGBM)\n"
            if compiled_rate
            else f"  compiled trees unavailable: {why}\n"
        )
        + "\n".join(lines)
    )
    print("  " + memory.summary())
    assert np.isfinite(predicted).all() and len(predicted) == ROWS


def _leaf_tables(cursor, table: str) -> list[str]:
    """The tables holding ``table``'s rows: its leaf partitions when it is partitioned, else itself."""
    cursor.execute("SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE isleaf", [table])
    return [row[0] for row in cursor.fetchall()] or [table]


def _table_sizes(cursor, table: str) -> dict[str, int]:
    """Heap, TOAST (+ free space and visibility maps) and index bytes of ``table``, summed over its partitions."""
    leaves = _leaf_tables(cursor, table)
    cursor.execute(
        "SELECT coalesce(sum(pg_relation_size(r)), 0), coalesce(sum(pg_table_size(r) - pg_relation_size(r)), 0), "
        "coalesce(sum(pg_indexes_size(r)), 0) FROM unnest(%s::regclass[]) AS r",
        [leaves],
    )
    heap, toast, indexes = cursor.fetchone()
    return {"heap": int(heap), "toast_and_maps": int(toast), "indexes": int(indexes), "leaf_tables": len(leaves)}


def _index_sizes(cursor, table: str) -> dict[str, int]:
    """Bytes per index (a partition's index summed under its parent index's name when partitioned)."""
    cursor.execute(
        "SELECT coalesce(p.relname, i.relname), sum(pg_relation_size(i.oid)) "
        "FROM unnest(%s::regclass[]) AS r JOIN pg_index x ON x.indrelid = r "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_inherits h ON h.inhrelid = i.oid LEFT JOIN pg_class p ON p.oid = h.inhparent "
        "GROUP BY 1 ORDER BY 2 DESC",
        [_leaf_tables(cursor, table)],
    )
    return {name: int(size) for name, size in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["bulk", "merge"])
def test_bytes_per_observation_row(path):
    """``bulk``: BENCH_SCALE_OBSERVATIONS rows of new stations in one run; ``merge``: a run below
    ``ingestion.services.PARTITION_MIN_ROWS`` (if main has it), which merges into the indexed table."""
    from django.db import connection, transaction

    from ingestion import services
    from ingestion.models import IngestRun, Observation
    from ingestion.services import load_point_data
    from tests.bench.test_bench_ingest import synthetic_point_data

    table = Observation._meta.db_table
    threshold = getattr(services, "PARTITION_MIN_ROWS", None)
    if path == "merge" and threshold is None:
        pytest.skip("every load merges into the indexed table: the bulk figure is the merge figure")
    rows = OBSERVATIONS if path == "bulk" else max(1000, min(OBSERVATIONS, threshold - 1))
    data = synthetic_point_data(rows)
    with transaction.atomic():
        with connection.cursor() as cursor:
            before, indexes_before = _table_sizes(cursor, table), _index_sizes(cursor, table)
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            rows_before = cursor.fetchone()[0]
            run = IngestRun.objects.create(
                kind="bench", source_path="synthetic", checksum="-", reader="-", reader_version="-"
            )
            start = time.perf_counter()
            _, inserted, _ = load_point_data(data, run)
            seconds = time.perf_counter() - start
            after = _table_sizes(cursor, table)
            indexes = {k: v - indexes_before.get(k, 0) for k, v in _index_sizes(cursor, table).items()}
            cursor.execute("SELECT pg_database_size(current_database())")
            database = cursor.fetchone()[0]
        count = Observation.objects.filter(ingest_run=run).count()
        transaction.set_rollback(True)
    grown = {k: after[k] - before[k] for k in ("heap", "toast_and_maps", "indexes")}
    per_row = {k: v / inserted for k, v in grown.items()}
    total = sum(per_row.values())
    result = {
        "rows": inserted,
        "load_s": round(seconds, 1),
        "rows_per_s": round(inserted / seconds),
        "bytes_per_row": {k: round(v, 1) for k, v in per_row.items()},
        "bytes_per_row_total": round(total, 1),
        "rows_before": rows_before,
        "index_bytes_per_row": {k: round(v / inserted, 1) for k, v in indexes.items()},
        "leaf_tables_after": after["leaf_tables"],
        "gib_at_100m_rows": round(total * 1e8 / 2**30, 1),
        "database_bytes_in_the_transaction": int(database),
        "memory": {"peak_rss_mib": round(memory.peak_rss_self() / memory.MIB)},
    }
    result["path"] = path
    _save(f"observations_{path}", result)
    print(
        f"\n[bench scale] {path}: {inserted:,} SYNTHETIC observations through load_point_data in {seconds:.1f} s "
        f"({inserted / seconds:,.0f} rows/s, {rows_before:,} rows there before): per row heap {per_row['heap']:.1f} B, TOAST/maps "
        f"{per_row['toast_and_maps']:.1f} B, indexes {per_row['indexes']:.1f} B = {total:.1f} B; "
        f"100 million rows: {total * 1e8 / 2**30:,.1f} GiB ({after['leaf_tables']} table(s) hold them)\n"
        f"  indexes: " + ", ".join(f"{k} {v / inserted:.1f} B/row" for k, v in indexes.items())
    )
    print("  " + memory.summary())
    assert count == inserted == rows
