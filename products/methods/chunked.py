"""Apply a fitted model over a (time, lat, lon) grid chunk by chunk, into a CF NetCDF-4 file (no Django).

A global daily product does not fit in memory as one feature matrix (0.1 degree: 6.5 million
cells a day, about 2 million of them land, times eight features and the forcing behind them), and
it does not need to: every output cell depends only on the inputs at that cell. The output grid is
therefore cut into :class:`Window` s (:func:`windows`), and each window is processed on its own:

1. ``features(window)`` (supplied by the caller) reads the inputs of that window only and returns
   the feature matrix of its valid cells (land, complete inputs) and the mask of those cells;
2. ``predict(matrix)`` (a fitted model) gives one value per valid cell;
3. the values are scattered back onto the window (``_FillValue`` elsewhere) and written into a
   NetCDF-4 file that was created beforehand with its final shape, chunking and compression
   (:func:`create_output`).

Memory is bounded by the window size, never by the whole grid. Windows are independent, so a
bigger grid or a longer period is *more windows*, and more windows can go to *more workers*:
``workers=N`` here computes windows in N local processes (:class:`concurrent.futures.ProcessPoolExecutor`)
while one writer keeps the file consistent; the same :func:`predict_window` is the unit of work a
Celery task or a Dask ``delayed`` call would take on other hosts (one output file per window range,
or a Zarr store that accepts parallel writers). With ``workers=1`` the reading and writing of the
next/previous window run on one I/O thread while the model predicts the current one (LightGBM and
the netCDF-C library release the GIL), so I/O is hidden behind prediction where cores allow.

The same windows run on a ``dask.distributed`` cluster when ``client`` is given (``"local"``: a
:class:`distributed.LocalCluster` started for the run; a scheduler address such as the portal's
``DASK_SCHEDULER_ADDRESS``, read by the caller; or a :class:`distributed.Client`), see
:mod:`products.methods.cluster`. ``features`` and ``predict`` (the fitted model) are scattered to
every worker once (:meth:`distributed.Client.scatter`, ``broadcast=True``), each window is one
task (:func:`predict_window`), at most two per worker thread are in flight, and this process, the
one writer, writes each window's values into the file as its task finishes and then lets the task
go: no process holds the grid, the driver holds one window at a time. Output is the same as in
one process (the same :func:`predict_window` on the same windows; only the order in which the
file's chunks are written differs).

The file is written under a temporary name in the target folder and moved into place with
:func:`os.replace` only when every window is written: readers never see a partial product, and a
failure leaves no output (and an older file at the target untouched).

References
----------
Eaton, B., et al. (2020): NetCDF Climate and Forecast (CF) Metadata Conventions, version 1.8,
https://cfconventions.org/ (sections 2.5.1 missing data, 4 coordinates, 7.1 cell boundaries).
Unidata netCDF-4 / HDF5 chunking and deflate: https://docs.unidata.ucar.edu/netcdf-c/current/
(netcdf4-python ``Dataset.createVariable``: ``zlib``, ``complevel``, ``chunksizes``, ``fill_value``).
Dask distributed, https://distributed.dask.org/ (``Client.scatter``, ``Client.submit``, ``as_completed``).
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import netCDF4
import numpy as np

from products.methods.cf import CALENDAR, TIME_UNITS
from products.methods.files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

FILL_VALUE = np.float32(-9999.0)

FeatureFunction = Callable[["Window"], "tuple[np.ndarray, np.ndarray]"]
PredictFunction = Callable[[np.ndarray], np.ndarray]
ReadFunction = Callable[["Window"], "tuple[Any, Any]"]
"""``read(window) -> (a, b)``: what :func:`run_windows` hands to ``compute`` (a :data:`FeatureFunction`'s
``(matrix, valid)``, or raw inputs that ``compute`` turns into features)."""
ComputeFunction = Callable[["Window", Any, Any], Any]
"""``compute(window, a, b) -> result``: the CPU part of a window (features, prediction), picklable."""
WriteFunction = Callable[["Window", Any], int]
"""``write(window, result) -> n_valid``: stores a window's result; runs in the calling process only."""
Complevel = Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""A zlib deflate level (netCDF4's ``complevel``)."""


@dataclass(frozen=True)
class Window:
    """One chunk of the output grid: index ranges along (time, lat, lon).

    Attributes
    ----------
    index : int
        Position in the list :func:`windows` returns.
    time, lat, lon : slice
        Half-open index ranges (``step`` None) into the output axes.
    """

    index: int
    time: slice
    lat: slice
    lon: slice

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_time, n_lat, n_lon) of the window."""
        return (self.time.stop - self.time.start, self.lat.stop - self.lat.start, self.lon.stop - self.lon.start)

    @property
    def key(self) -> tuple[slice, slice, slice]:
        """Index tuple for a (time, lat, lon) array."""
        return (self.time, self.lat, self.lon)


def windows(shape: Sequence[int], chunk: Sequence[int]) -> list[Window]:
    """Cut a (time, lat, lon) grid into windows of at most ``chunk`` cells, time slowest.

    Parameters
    ----------
    shape : (int, int, int)
        Grid shape (n_time, n_lat, n_lon).
    chunk : (int, int, int)
        Window shape; edge windows are smaller.

    Returns
    -------
    list of Window
        Covering every cell exactly once.

    Raises
    ------
    ValueError
        ``shape`` or ``chunk`` not three non-negative/positive integers.
    """
    if len(shape) != 3 or len(chunk) != 3:
        raise ValueError(f"shape and chunk must be (time, lat, lon), found {tuple(shape)} and {tuple(chunk)}")
    if any(int(n) < 0 for n in shape) or any(int(c) < 1 for c in chunk):
        raise ValueError(f"shape must be >= 0 and chunk >= 1 along every axis, found {tuple(shape)}, {tuple(chunk)}")
    starts = [range(0, int(n), int(c)) for n, c in zip(shape, chunk, strict=True)]
    out: list[Window] = []
    for t in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                out.append(
                    Window(
                        len(out),
                        slice(t, min(t + chunk[0], shape[0])),
                        slice(y, min(y + chunk[1], shape[1])),
                        slice(x, min(x + chunk[2], shape[2])),
                    )
                )
    return out


@dataclass
class GridSpec:
    """The output file: one float32 variable on a regular (time, lat, lon) grid.

    Attributes
    ----------
    name : str
        Variable name (e.g. ``"et"``).
    time : numpy.ndarray
        datetime64, (n_time,), strictly increasing; written as ``days since 1970-01-01``.
    lat, lon : numpy.ndarray
        float64 cell centres in degrees_north / degrees_east, strictly monotonic.
    attrs : dict
        Attributes of the variable (``standard_name``, ``units``, ``long_name``, ``cell_methods``...).
    global_attrs : dict
        File attributes (``Conventions``, ``title``, ``source``, ``history``, ``references``...);
        None values are dropped.
    time_bounds : numpy.ndarray, optional
        datetime64, (n_time, 2): ``time_bnds`` (CF 7.1), e.g. [day, next day) for daily means.
    chunksizes : (int, int, int), optional
        NetCDF-4 chunk shape of the variable; default (1, min(n_lat, 256), min(n_lon, 256)),
        the layout of the portal's cube store.
    complevel : int
        zlib deflate level (1-9).
    """

    name: str
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    attrs: dict = field(default_factory=dict)
    global_attrs: dict = field(default_factory=dict)
    time_bounds: np.ndarray | None = None
    chunksizes: tuple[int, int, int] | None = None
    complevel: Complevel = 4

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_time, n_lat, n_lon)."""
        return (len(self.time), len(self.lat), len(self.lon))


def float_grid_variable(nc: netCDF4.Dataset, name: str, chunks, attrs=None, *, complevel: Complevel = 4):
    """A ``(time, lat, lon)`` float32 variable of an open grid file, deflated, shuffled, chunked as ``chunks``,
    :data:`FILL_VALUE` for missing cells, with ``attrs`` (None values left out). The one way the product
    writers make a float grid (estimate, standard error, probability)."""
    var = nc.createVariable(
        name,
        "f4",
        ("time", "lat", "lon"),
        zlib=True,
        complevel=complevel,
        shuffle=True,
        chunksizes=chunks,
        fill_value=FILL_VALUE,
    )
    var.setncatts({k: v for k, v in (attrs or {}).items() if v is not None})
    return var


def days_since_epoch(times: np.ndarray) -> np.ndarray:
    """Times as float64 days since 1970-01-01 (the :data:`TIME_UNITS` of the outputs); any shape."""
    return (np.asarray(times, dtype="datetime64[ns]") - np.datetime64("1970-01-01", "ns")) / np.timedelta64(1, "D")


def create_output(path: str | os.PathLike, spec: GridSpec) -> netCDF4.Dataset:
    """Create the NetCDF-4 file of ``spec`` with every data cell at ``_FillValue``, open for writing.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (overwritten).
    spec : GridSpec
        Grid, variable and attributes.

    Returns
    -------
    netCDF4.Dataset
        Open in write mode; the caller writes windows into ``ds[spec.name]`` and closes it.
        Cells never written read back as missing (``_FillValue`` = :data:`FILL_VALUE`, float32;
        xarray decodes them to NaN). Chunks never written take no space.

    Raises
    ------
    ValueError
        Empty or non-monotonic axes.
    OSError
        The file cannot be created.
    """
    for axis in ("lat", "lon", "time"):
        values = getattr(spec, axis)
        if axis != "time":
            values = np.asarray(values, dtype="float64")
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"{axis}: expected a non-empty 1-D axis, found shape {values.shape}")
        steps = np.diff(values).astype("float64") if axis != "time" else np.diff(values).astype("int64")
        if values.size > 1 and not (np.all(steps > 0) or (axis != "time" and np.all(steps < 0))):
            raise ValueError(
                f"{axis}: expected strictly monotonic values" + (" (increasing)" if axis == "time" else "")
            )
    n_time, n_lat, n_lon = spec.shape
    wanted = spec.chunksizes or (1, min(n_lat, 256), min(n_lon, 256))
    chunks = tuple(max(1, min(int(c), n)) for c, n in zip(wanted, spec.shape, strict=True))
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        ds.createDimension("time", n_time)
        ds.createDimension("lat", n_lat)
        ds.createDimension("lon", n_lon)
        time_var = ds.createVariable("time", "f8", ("time",))
        time_var.setncatts(
            {"standard_name": "time", "long_name": "time", "axis": "T", "units": TIME_UNITS, "calendar": CALENDAR}
        )
        time_var[:] = days_since_epoch(spec.time)
        if spec.time_bounds is not None:
            ds.createDimension("nv", 2)
            bounds = ds.createVariable("time_bnds", "f8", ("time", "nv"))
            bounds.setncatts({"units": TIME_UNITS, "calendar": CALENDAR})
            bounds[:] = days_since_epoch(np.asarray(spec.time_bounds).reshape(n_time, 2))
            time_var.bounds = "time_bnds"
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.setncatts({"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"})
        lat[:] = np.asarray(spec.lat, dtype="float64")
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon.setncatts({"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"})
        lon[:] = np.asarray(spec.lon, dtype="float64")
        var = float_grid_variable(ds, spec.name, chunks, spec.attrs, complevel=spec.complevel)
        ds.setncatts({k: v for k, v in spec.global_attrs.items() if v is not None})
        var.set_auto_mask(False)  # windows are written as plain float32 with FILL_VALUE already in place
    except BaseException:
        ds.close()
        raise
    return ds


def predict_window(window: Window, features: FeatureFunction, predict: PredictFunction) -> np.ndarray:
    """Values of one window: features of its valid cells, prediction, scattered back.

    Parameters
    ----------
    window : Window
        The chunk.
    features : callable
        ``features(window) -> (matrix, valid)``: ``valid`` bool (n_time, n_lat, n_lon) of the
        window (True where the model applies: land with complete inputs), ``matrix`` float
        (valid.sum(), n_features) whose rows are the valid cells in C order of ``valid``
        (``matrix[i]`` belongs to ``np.flatnonzero(valid)[i]``). It must read the inputs of that
        window only (that is what bounds the memory).
    predict : callable
        ``predict(matrix) -> values`` (one value per row), e.g. a fitted model's ``predict``.

    Returns
    -------
    numpy.ndarray
        float32, ``window.shape``: predictions on valid cells, :data:`FILL_VALUE` elsewhere.
        Non-finite predictions are stored as fill too.

    Raises
    ------
    ValueError
        ``valid`` has the wrong shape, or the matrix or the predictions the wrong length.
    """
    matrix, valid = features(window)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != window.shape:
        raise ValueError(
            f"features: valid mask of window {window.index} has shape {valid.shape}, expected {window.shape}"
        )
    out = np.full(window.shape, FILL_VALUE, dtype="float32")
    n = int(valid.sum())
    if len(matrix) != n:
        raise ValueError(f"features: {len(matrix)} rows for {n} valid cells in window {window.index}")
    if n:
        values = np.asarray(predict(matrix), dtype="float32").reshape(-1)
        if values.size != n:
            raise ValueError(f"predict: {values.size} values for {n} rows in window {window.index}")
        values[~np.isfinite(values)] = FILL_VALUE
        out[valid] = values
    return out


@dataclass
class ChunkedRunStats:
    """What :func:`apply_chunked` did.

    Attributes
    ----------
    path : pathlib.Path
        The output file.
    n_windows : int
        Windows processed.
    n_valid : int
        Cells predicted (all windows).
    n_cells : int
        Cells of the grid.
    max_window_cells : int
        Cells of the largest window (what bounds the memory).
    seconds : float
        Wall time.
    """

    path: Path
    n_windows: int
    n_valid: int
    n_cells: int
    max_window_cells: int
    seconds: float


def _given(matrix: np.ndarray, valid: np.ndarray, _window: Window) -> tuple[np.ndarray, np.ndarray]:
    """A ``features`` function whose features were read already (the I/O thread read them ahead)."""
    return matrix, valid


def _write(var, window: Window, values: np.ndarray) -> int:
    """Write one window of float32 values into ``var``; returns the valid cells."""
    valid = int(np.count_nonzero(values != FILL_VALUE))
    if valid:  # an all-fill window keeps its chunks unallocated
        var[window.key] = values
    return valid


def apply_chunked(
    features: FeatureFunction,
    predict: PredictFunction,
    spec: GridSpec,
    path: str | os.PathLike,
    *,
    chunk: Sequence[int] = (1, 256, 256),
    workers: int = 1,
    client: Client | str | None = None,
) -> ChunkedRunStats:
    """Predict every window of ``spec``'s grid and write the CF NetCDF-4 file atomically.

    Parameters
    ----------
    features : callable
        ``features(window) -> (matrix, valid)``, see :func:`predict_window`. With ``workers > 1``
        it must be picklable (a module-level function or a :func:`functools.partial` of one,
        holding file paths or lazily opened datasets, not loaded arrays).
    predict : callable
        ``predict(matrix) -> values``, picklable when ``workers > 1`` (a fitted LightGBM model's
        bound ``predict`` is).
    spec : GridSpec
        The output grid (its shape defines the windows), variable and attributes.
    path : str or os.PathLike
        Target file; its folder must exist. Written as ``.<name>.<random>.tmp`` in the same folder,
        then moved into place with :func:`os.replace`.
    chunk : (int, int, int)
        Window shape (time, lat, lon). Memory is a few windows' worth of inputs and features;
        multiples of the input cube's chunks (1, 256, 256) read fastest.
    workers : int
        1: windows in this process (feature reading and file writing on one I/O thread, overlapped
        with prediction). N > 1: windows computed in N spawned processes (at most 2N in flight),
        written here in completion order. Results do not depend on ``chunk`` or ``workers``.
        With ``client="local"``: the number of worker processes of the local cluster; ignored
        with another ``client`` (a running cluster has its own workers).
    client : distributed.Client or str, optional
        None (default): no Dask, as ``workers`` says. Otherwise the windows are tasks on a
        ``dask.distributed`` cluster (see :func:`products.methods.cluster.connect`): ``"local"``
        starts a :class:`distributed.LocalCluster` of ``workers`` processes for this run; any other
        string is a scheduler address (e.g. ``tcp://10.0.0.5:8786``, the caller's
        ``DASK_SCHEDULER_ADDRESS`` setting) whose client is opened for this run; a
        :class:`distributed.Client` is used as it is. What is opened here is closed on every path
        (success, error, interrupt); a given Client is left open. ``features`` and ``predict`` are
        scattered to every worker once and must pickle (cloudpickle); on separate hosts the paths
        ``features`` reads must be the same on every worker. Same output as without ``client``.

    Returns
    -------
    ChunkedRunStats
        Path, counts and timing.

    Raises
    ------
    ValueError
        Bad ``chunk``/``workers``, or a window whose features or predictions do not fit (see
        :func:`predict_window`).
    Exception
        Whatever ``features`` or ``predict`` raise, of the same type, with a note naming the
        window (index and index ranges; :pep:`678` ``__notes__``), also when it was raised on a Dask
        worker (``distributed.KilledWorker`` when a worker died on it). In every case the
        temporary file is removed, nothing is written at ``path`` and the remaining tasks are
        cancelled.
    TypeError
        ``client`` is neither None, a string nor a :class:`distributed.Client`.
    OSError
        The scheduler at a ``client`` address cannot be reached.
    """
    start = time.perf_counter()
    path = Path(path)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, found {workers}")
    todo = windows(spec.shape, chunk)
    with atomic_path(path) as tmp:
        ds = create_output(tmp, spec)
        try:
            n_valid = run_windows(
                todo,
                features,
                functools.partial(predict_given, predict=predict),
                functools.partial(_write, ds[spec.name]),
                workers=workers,
                client=client,
            )
        finally:
            ds.close()
    return ChunkedRunStats(
        path,
        len(todo),
        n_valid,
        math.prod(spec.shape),
        max((math.prod(w.shape) for w in todo), default=0),
        time.perf_counter() - start,
    )


def predict_given(window: Window, matrix: np.ndarray, valid: np.ndarray, *, predict: PredictFunction) -> np.ndarray:
    """:func:`predict_window` on features already read: the ``compute`` of :func:`apply_chunked`."""
    return predict_window(window, functools.partial(_given, matrix, valid), predict)


def compute_window(window: Window, features: ReadFunction, compute: ComputeFunction) -> Any:
    """``compute(window, *features(window))``: the unit of work a worker process or a Dask task runs."""
    matrix, valid = features(window)
    return compute(window, matrix, valid)


def run_windows(
    todo: Sequence[Window],
    features: ReadFunction,
    compute: ComputeFunction,
    write: WriteFunction,
    *,
    workers: int = 1,
    client: Client | str | None = None,
) -> int:
    """Read, compute and write every window, in this process, in local processes or on a Dask cluster.

    The engine under :func:`apply_chunked`, for writers that store more than one float32 variable
    per window (packed integers, class labels, a probability beside a state, a GeoTIFF band): the
    caller creates its outputs, passes ``write`` and closes them afterwards.

    Parameters
    ----------
    todo : sequence of Window
        The windows (:func:`windows`).
    features : callable
        ``features(window) -> (a, b)``: reads the window's inputs, e.g. a :data:`FeatureFunction`
        (``(matrix, valid)``, see :func:`predict_window`), or the raw inputs only, so that turning them
        into features happens in ``compute``, off the I/O thread.
    compute : callable
        ``compute(window, a, b) -> result``: the prediction(s) of one window (e.g.
        :func:`predict_given`, or a function returning several arrays). Pure CPU, no file access.
    write : callable
        ``write(window, result) -> int`` (valid cells written), always called in this process, one
        window after another (never concurrently), in completion order.
    workers, client
        As for :func:`apply_chunked`: ``client`` None and ``workers`` 1: one process, ``features``
        and ``write`` on one I/O thread overlapped with ``compute`` on the calling thread (reads and
        writes never run at the same time, HDF5 not being thread-safe); ``workers`` N > 1: N spawned
        processes run :func:`compute_window`; a ``client``: windows are tasks on a Dask cluster
        (``features`` and ``compute`` scattered to every worker once, both must pickle).

    Returns
    -------
    int
        The sum of what ``write`` returned.

    Raises
    ------
    ValueError
        ``workers`` below 1.
    Exception
        Whatever ``features``, ``compute`` or ``write`` raise, with a :pep:`678` note naming the window;
        remaining windows are cancelled.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, found {workers}")
    todo = list(todo)
    if client is not None:
        from products.methods.cluster import connect

        with connect(client, n_workers=workers) as opened:
            return _run_dask(todo, features, compute, write, opened)
    if workers == 1:
        return _run_local(todo, features, compute, write)
    return _run_pool(todo, features, compute, write, workers)


def _run_local(todo: list[Window], features: ReadFunction, compute: ComputeFunction, write: WriteFunction) -> int:
    """One process: an I/O thread reads window i+1 and writes window i-1 while window i is computed.

    All netCDF/HDF5 calls (reading inside ``features``, writing in ``write``) run on that single
    thread, one after another, because HDF5 builds are in general not thread-safe; only ``compute``
    runs on the calling thread. At most two windows of features and two of results exist at a time.
    """
    if not todo:
        return 0
    n_valid = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunked-io") as io:
        pending_features = io.submit(features, todo[0])
        pending_write: tuple[concurrent.futures.Future[int], Window] | None = None
        for i, window in enumerate(todo):
            try:
                matrix, valid = pending_features.result()
                if i + 1 < len(todo):
                    pending_features = io.submit(features, todo[i + 1])
                result = compute(window, matrix, valid)
            except Exception as exc:
                _note(exc, window, "in this process")
                raise
            del matrix, valid
            if pending_write is not None:
                n_valid += _written(*pending_write)
            pending_write = (io.submit(write, window, result), window)
            del result
        if pending_write is not None:
            n_valid += _written(*pending_write)
    return n_valid


def _written(future: concurrent.futures.Future[int], window: Window) -> int:
    try:
        return int(future.result())
    except Exception as exc:
        _note(exc, window, "while writing")
        raise


def _run_pool(
    todo: list[Window], features: ReadFunction, compute: ComputeFunction, write: WriteFunction, workers: int
) -> int:
    """N spawned processes compute windows (:func:`compute_window`); this process writes them."""
    n_valid = 0
    context = multiprocessing.get_context("spawn")  # fork is unsafe after OpenMP (LightGBM) threads started
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        queue: Iterator[Window] = iter(todo)
        in_flight: dict[concurrent.futures.Future, Window] = {}

        def submit_next() -> None:
            window = next(queue, None)
            if window is not None:
                in_flight[pool.submit(compute_window, window, features, compute)] = window

        try:
            for _ in range(2 * workers):
                submit_next()
            while in_flight:
                done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    window = in_flight.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:
                        _note(exc, window, "in a worker process")
                        raise
                    n_valid += _write_noted(write, window, result)
                    submit_next()
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    return n_valid


def _write_noted(write: WriteFunction, window: Window, result: Any) -> int:
    try:
        return int(write(window, result))
    except Exception as exc:
        _note(exc, window, "while writing")
        raise


def _note(exc: BaseException, window: Window, where: str) -> None:
    """Name the window that failed on ``exc`` (:pep:`678` note; the exception keeps its type and message)."""
    exc.add_note(
        f"apply_chunked: window {window.index} (time {window.time.start}:{window.time.stop}, "
        f"lat {window.lat.start}:{window.lat.stop}, lon {window.lon.start}:{window.lon.stop}) failed {where}"
    )


def _run_dask(
    todo: list[Window], features: ReadFunction, compute: ComputeFunction, write: WriteFunction, client: Client
) -> int:
    """Windows as tasks on a Dask cluster; this process writes each result as it arrives.

    ``features`` and ``compute`` go to every worker once (scattered, broadcast) and the tasks refer
    to them by key. At most two tasks per worker thread are in flight, so finished windows waiting
    for the writer stay bounded on the workers; each result is fetched, written and released (the
    future dropped) before the next task is submitted. On any error the tasks in flight are
    cancelled and the scattered objects released.
    """
    from distributed import as_completed

    from products.methods.cluster import total_threads

    if not todo:
        return 0
    run = uuid.uuid4().hex[:12]
    shipped = client.scatter([features, compute], broadcast=True, hash=False)
    features_ref, compute_ref = shipped
    queue: Iterator[Window] = iter(todo)
    in_flight: dict = {}
    completed = as_completed(loop=client.loop)
    n_valid = 0

    def submit_next() -> None:
        window = next(queue, None)
        if window is not None:
            future = client.submit(
                compute_window, window, features_ref, compute_ref, key=f"chunked-window-{run}-{window.index}"
            )
            in_flight[future] = window
            completed.add(future)

    try:
        for _ in range(2 * total_threads(client)):
            submit_next()
        for future in completed:
            window = in_flight.pop(future)
            try:
                values = future.result()
            except Exception as exc:
                _note(exc, window, "on a Dask worker")
                raise
            del future
            n_valid += _write_noted(write, window, values)
            del values
            submit_next()
    except BaseException:
        if in_flight:
            client.cancel(list(in_flight))
        in_flight.clear()
        raise
    finally:
        completed.clear()
        client.cancel(shipped)
    return n_valid
