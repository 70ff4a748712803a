"""Benchmark: the chunked ET grid in one process against a Dask LocalCluster of 1 and 2 workers.

SYNTHETIC data, the same as tests/bench/test_bench_generate.py (its ``synthetic_cube`` and
``synthetic_model``): a made-up global day of 3-hourly forcing in the cube-store layout (NetCDF-4,
chunks 1 x 256 x 256, zlib 4), NaN over a made-up ocean, and a LightGBM model with the ET fusion
features and :data:`et_fusion.DEFAULT_PARAMS` (300 trees; ``n_jobs`` 2 unless
``BENCH_DASK_NJOBS`` says otherwise) fitted on synthetic rows. The values mean nothing.

The same run three ways, on the same features function (:func:`et_grid.window_features` over
the forcing file opened lazily with xarray, as test_bench_generate.py does) and the same model:
:func:`chunked.apply_chunked` in this process (the baseline: the I/O thread overlapped with
predict), then with ``client=`` a :class:`distributed.LocalCluster` of 1 and of 2 worker processes
(one thread each; the model's own LightGBM threads come on top). Cluster start-up (worker
processes, and their import of :mod:`products.generators.et_grid`, done once per worker) is timed
apart from the run. Prints wall time, the ratio of each to the one-process run, the speed-up
1 -> 2 workers, and peak resident memory: this process (sampled every 20 ms during each run: the
writer) and each worker process, sampled the same way. Asserts only that the three files
hold the same values (bitwise).

``BENCH_DASK_RESOLUTION`` (degrees, default 0.25: 1440 x 600 cells, about 0.3 million land cells),
``BENCH_GRID_CHUNK`` (``lat,lon``, default ``256,256``), ``BENCH_DASK_REPEAT`` (default 1, best kept).
On a host with few cores shared with other work, two workers cannot be twice as fast: the CPU
count is printed beside the figures. Run with ``make bench`` or
``pytest -s tests/bench/test_bench_dask.py``.
"""

from __future__ import annotations

import functools
import importlib
import os
import resource
import threading
import time

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
import psutil
import xarray as xr

from products.generators import et_fusion, et_grid
from products.methods import chunked, cluster
from tests.bench.test_bench_generate import synthetic_cube, synthetic_model

RESOLUTION = float(os.environ.get("BENCH_DASK_RESOLUTION", "0.25"))
CHUNK = tuple(int(n) for n in os.environ.get("BENCH_GRID_CHUNK", "256,256").split(","))
REPEAT = int(os.environ.get("BENCH_DASK_REPEAT", 1))
N_JOBS = int(os.environ.get("BENCH_DASK_NJOBS", et_fusion.DEFAULT_PARAMS["n_jobs"]))


class PeakRss:
    """Peak resident memory of processes while the block runs (psutil, sampled every 20 ms).

    ``peaks`` maps each pid (this process first, then ``pids``) to its peak RSS in bytes. Sampling
    is used, not ``ru_maxrss``: a spawned worker's ``ru_maxrss`` starts from its parent's at fork.
    """

    def __init__(self, pids=(), interval: float = 0.02):
        self.processes = [psutil.Process()] + [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.peaks = {p.pid: 0 for p in self.processes}
        self._stop = threading.Event()

    def _take(self) -> None:
        for process in self.processes:
            self.peaks[process.pid] = max(self.peaks[process.pid], process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._take()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._take()


def run_once(features, predict, spec, path, client=None) -> tuple[float, list[int]]:
    """Best wall time of :data:`REPEAT` runs and the peak RSS of the driver, then of each worker."""
    pids = sorted(client.run(os.getpid).values()) if client is not None else []
    best, peaks = float("inf"), [0] * (1 + len(pids))
    for _ in range(REPEAT):
        with PeakRss(pids) as rss:
            start = time.perf_counter()
            chunked.apply_chunked(features, predict, spec, path, chunk=(1, *CHUNK), client=client)
            best = min(best, time.perf_counter() - start)
        peaks = [max(a, b) for a, b in zip(peaks, rss.peaks.values(), strict=True)]
    return best, peaks


def read(path) -> np.ndarray:
    with netCDF4.Dataset(path) as nc:
        var = nc["et"]
        var.set_auto_mask(False)
        return var[:]


def test_dask_local_cluster_one_and_two_workers_against_one_process(tmp_path):
    model = synthetic_model().set_params(n_jobs=N_JOBS)
    cube_path = tmp_path / "forcing.nc"
    n_land = synthetic_cube(cube_path, RESOLUTION)
    ds = xr.open_dataset(cube_path)  # lazy (netCDF4 backend): pickled to the workers as the file's path
    try:
        cube = et_grid.ForcingCube([ds])
        days, starts = cube.days()
        calendar = et_fusion.add_calendar_features(pd.DataFrame({"time": days}))
        features = functools.partial(
            et_grid.window_features,
            cube=cube,
            starts=starts,
            month_sin=calendar["month_sin"].to_numpy(),
            month_cos=calendar["month_cos"].to_numpy(),
        )
        predict = functools.partial(et_grid.predict_matrix, model=model)
        spec = chunked.GridSpec(
            name="et", time=days, lat=cube.lat, lon=cube.lon, attrs={"units": "kg m-2 d-1"},
            global_attrs={"title": "SYNTHETIC benchmark grid"},
        )  # fmt: skip
        n_windows = len(chunked.windows(spec.shape, (1, *CHUNK)))
        results = {"one process": run_once(features, predict, spec, tmp_path / "et_local.nc")}
        starts_s = {}
        for n in (1, 2):
            start = time.perf_counter()
            with cluster.local_client(n) as client:
                # a worker imports what unpickling features and model needs (several seconds on a busy host):
                # once per worker process, so it is start-up, not part of a run
                client.run(importlib.import_module, "products.generators.et_grid")
                starts_s[n] = time.perf_counter() - start
                results[f"LocalCluster {n} worker(s)"] = run_once(
                    features, predict, spec, tmp_path / f"et_dask{n}.nc", client=client
                )
    finally:
        ds.close()
    baseline = results["one process"][0]
    lines = [
        f"\n[bench dask] SYNTHETIC global {RESOLUTION:g} degree day, {spec.shape[1] * spec.shape[2]:,} cells, "
        f"{n_land:,} land cells, {n_windows} windows of 1x{CHUNK[0]}x{CHUNK[1]}, best of {REPEAT}, "
        f"LightGBM {lightgbm.__version__} n_jobs={N_JOBS}, {os.cpu_count()} CPUs on this host:"
    ]
    for name, (seconds, peaks) in results.items():
        lines.append(
            f"  {name:<26} {seconds:6.2f} s  ({n_land / seconds:,.0f} land cells/s)  ratio to one process "
            f"{seconds / baseline:.2f}  peak RSS: driver {peaks[0] / 2**20:,.0f} MiB"
            + "".join(f", worker {i + 1} {r / 2**20:,.0f} MiB" for i, r in enumerate(peaks[1:]))
        )
    for n in (1, 2):
        lines.append(f"  LocalCluster {n} worker(s): start-up with imports {starts_s[n]:.2f} s (not in the time above)")
    one, two = results["LocalCluster 1 worker(s)"][0], results["LocalCluster 2 worker(s)"][0]
    lines.append(f"  speed-up 1 -> 2 workers {one / two:.2f}x; 2 workers against one process {baseline / two:.2f}x")
    lines.append(
        f"  max RSS (ru_maxrss): this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB, "
        f"finished children {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10:,.0f} MiB (the workers "
        "above: sampled, since a spawned worker's ru_maxrss starts from its parent's)"
    )
    print("\n".join(lines))
    reference = read(tmp_path / "et_local.nc")
    assert np.count_nonzero(reference != chunked.FILL_VALUE) == n_land
    for n in (1, 2):
        np.testing.assert_array_equal(read(tmp_path / f"et_dask{n}.nc"), reference)
