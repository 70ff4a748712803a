"""The chunked grid path on Dask distributed (products.methods.chunked.apply_chunked with ``client``).

No database. SYNTHETIC inputs: a small (time, lat, lon) grid of made-up smooth fields, NaN over a
made-up ocean; the model is a small LightGBM regressor fitted on synthetic rows (one thread). The
clusters are small: ``processes=False`` (worker threads of this process) where the features are
in memory, and one worker process where the features read a NetCDF file by path (the real case:
the function and the model are pickled and sent to another process).

Output is compared bitwise (``numpy.testing.assert_array_equal`` on the float32 values read back):
every path runs the same :func:`predict_window` on the same windows with the same model.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import distributed
import lightgbm
import netCDF4
import numpy as np
import pandas as pd
import pytest

from products.methods import chunked, cluster

SHAPE = (3, 24, 30)  # time, lat, lon
CHUNK = (1, 8, 8)  # 3 x 3 x 4 = 36 windows, edge windows smaller


def synthetic_inputs(shape=SHAPE, seed: int = 0) -> np.ndarray:
    """SYNTHETIC float32 (3 features, time, lat, lon): smooth fields plus noise, NaN over a made-up ocean."""
    rng = np.random.default_rng(seed)
    t, y, x = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    fields = np.stack([np.sin(3 * y + t), np.cos(4 * x) + t, y * x]) + 0.1 * rng.normal(size=(3, *shape))
    ocean = (np.sin(5 * y[0]) + np.cos(7 * x[0])) > 1.0
    fields[:, :, ocean] = np.nan
    fields[1, 1, 5, 5] = np.nan  # one land cell misses one input on one day
    return fields.astype("float32")


def synthetic_model(seed: int = 0) -> lightgbm.LGBMRegressor:
    """LightGBM fitted on SYNTHETIC rows (made-up target of the three inputs), one thread."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (2000, 3))
    y = 2 * x[:, 0] - x[:, 1] ** 2 + np.sin(3 * x[:, 2]) + rng.normal(0, 0.1, 2000)
    return lightgbm.LGBMRegressor(n_estimators=20, num_leaves=15, n_jobs=1, verbose=-1, random_state=seed).fit(x, y)


def memory_features(window: chunked.Window, *, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``features`` on an in-memory (3, time, lat, lon) array: rows of the cells with every input finite."""
    block = inputs[(slice(None), *window.key)]
    valid = np.isfinite(block).all(axis=0)
    return block[:, valid].T.astype("float64"), valid


def file_features(window: chunked.Window, *, path: str) -> tuple[np.ndarray, np.ndarray]:
    """``features`` reading the window only from a NetCDF file (variable ``inputs``, fill -> NaN)."""
    with netCDF4.Dataset(path) as nc:
        block = np.asarray(nc["inputs"][(slice(None), *window.key)].filled(np.nan), dtype="float32")
    valid = np.isfinite(block).all(axis=0)
    return block[:, valid].T.astype("float64"), valid


def predict_frame(matrix: np.ndarray, *, model) -> np.ndarray:
    return model.predict(pd.DataFrame(matrix, columns=model.feature_name_))


def spec(shape=SHAPE) -> chunked.GridSpec:
    return chunked.GridSpec(
        name="y",
        time=pd.date_range("2020-01-01", periods=shape[0], freq="D").values,
        lat=np.linspace(-10, 10, shape[1]),
        lon=np.linspace(100, 130, shape[2]),
        attrs={"long_name": "SYNTHETIC prediction", "units": "1"},
        global_attrs={"Conventions": "CF-1.8", "title": "SYNTHETIC test grid"},
        chunksizes=(1, 8, 8),
    )


def read(path) -> np.ndarray:
    with netCDF4.Dataset(path) as nc:
        var = nc["y"]
        var.set_auto_mask(False)
        return var[:]


class FailingFeatures:
    """``features`` that raise on one window (picklable; SYNTHETIC)."""

    def __init__(self, inputs: np.ndarray, bad: int):
        self.inputs, self.bad = inputs, bad

    def __call__(self, window: chunked.Window):
        if window.index == self.bad:
            raise RuntimeError(f"SYNTHETIC reader failure in window {window.index}")
        return memory_features(window, inputs=self.inputs)


@pytest.fixture(scope="module")
def inputs():
    return synthetic_inputs()


@pytest.fixture(scope="module")
def model():
    return synthetic_model()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs, model):
    """The in-process run (no Dask): the output every other path must reproduce."""
    path = tmp_path_factory.mktemp("reference") / "y.nc"
    stats = chunked.apply_chunked(
        functools.partial(memory_features, inputs=inputs),
        functools.partial(predict_frame, model=model),
        spec(),
        path,
        chunk=CHUNK,
    )
    return read(path), stats


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_the_reference_is_a_real_prediction(reference, inputs, model):
    values, stats = reference
    valid = np.isfinite(inputs).all(axis=0)
    assert stats.n_windows == 3 * 3 * 4 and stats.n_valid == valid.sum() > 0
    assert (values[~valid] == chunked.FILL_VALUE).all()
    whole = model.predict(pd.DataFrame(inputs[:, valid].T.astype("float64"), columns=model.feature_name_))
    np.testing.assert_array_equal(values[valid], whole.astype("float32"))


@pytest.mark.parametrize("n_workers", [1, 2])
def test_a_local_cluster_gives_the_in_process_output_bitwise(tmp_path, reference, inputs, model, n_workers):
    with cluster.local_client(n_workers, processes=False) as client:
        assert len(client.nthreads()) == n_workers
        stats = chunked.apply_chunked(
            functools.partial(memory_features, inputs=inputs),
            functools.partial(predict_frame, model=model),
            spec(),
            tmp_path / "y.nc",
            chunk=CHUNK,
            client=client,
        )
        assert client.status == "running"  # a given client is left open
        # nothing of the run stays on the cluster: windows and the scattered model are released
        assert wait_until(lambda: client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0)
    np.testing.assert_array_equal(read(tmp_path / "y.nc"), reference[0])
    assert stats.n_valid == reference[1].n_valid and stats.n_windows == reference[1].n_windows


def test_worker_processes_reading_a_file_give_the_same_output(tmp_path, reference, inputs, model):
    """client="local": a LocalCluster of one worker process started and closed by apply_chunked."""
    source = tmp_path / "inputs.nc"
    with netCDF4.Dataset(source, "w") as nc:
        for name, n in zip(("feature", "time", "lat", "lon"), inputs.shape, strict=True):
            nc.createDimension(name, n)
        var = nc.createVariable("inputs", "f4", ("feature", "time", "lat", "lon"), fill_value=np.float32(-9999))
        var[:] = np.where(np.isfinite(inputs), inputs, -9999)
    chunked.apply_chunked(
        functools.partial(file_features, path=str(source)),
        functools.partial(predict_frame, model=model),
        spec(),
        tmp_path / "y.nc",
        chunk=CHUNK,
        workers=1,
        client=cluster.LOCAL,
    )
    np.testing.assert_array_equal(read(tmp_path / "y.nc"), reference[0])


def test_the_driver_writes_as_results_arrive_with_few_windows_in_flight(tmp_path, inputs, model, monkeypatch):
    """Window k is only submitted once k - 2 x threads + 1 windows are written (memory stays bounded)."""
    written: list[int] = []
    late: list[tuple[int, int]] = []
    write = chunked._write

    def counting_write(var, window, values):
        written.append(window.index)
        return write(var, window, values)

    def watched_features(window):
        if len(written) < window.index - limit + 1:
            late.append((window.index, len(written)))
        return memory_features(window, inputs=inputs)

    monkeypatch.setattr(chunked, "_write", counting_write)
    with cluster.local_client(2, processes=False) as client:
        limit = 2 * cluster.total_threads(client)
        stats = chunked.apply_chunked(
            watched_features, functools.partial(predict_frame, model=model), spec(), tmp_path / "y.nc",
            chunk=CHUNK, client=client,
        )  # fmt: skip
    assert sorted(written) == list(range(stats.n_windows)) and stats.n_windows > 2 * limit
    assert late == []


def test_a_failing_window_raises_and_leaves_no_file(tmp_path, inputs, model):
    target = tmp_path / "y.nc"
    target.write_bytes(b"older version")
    with cluster.local_client(2, processes=False) as client:
        with pytest.raises(RuntimeError, match="SYNTHETIC reader failure in window 7") as caught:
            chunked.apply_chunked(
                FailingFeatures(inputs, bad=7),
                functools.partial(predict_frame, model=model),
                spec(),
                target,
                chunk=CHUNK,
                client=client,
            )
        assert client.status == "running"
        assert wait_until(lambda: client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "window 7 (time 0:1, lat 8:16, lon 24:30) failed on a Dask worker" in notes
    assert target.read_bytes() == b"older version"  # the older file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.nc"]  # no temporary file left


class RecordingCluster(distributed.LocalCluster):
    """A LocalCluster that remembers itself and keeps its workers in this process (cheap)."""

    made: list[distributed.LocalCluster] = []

    def __init__(self, *args, **kwargs):
        kwargs["processes"] = False
        super().__init__(*args, **kwargs)
        RecordingCluster.made.append(self)


def test_a_local_cluster_is_closed_after_success_and_after_failure(tmp_path, inputs, model, monkeypatch):
    monkeypatch.setattr(distributed, "LocalCluster", RecordingCluster)
    RecordingCluster.made.clear()
    chunked.apply_chunked(
        functools.partial(memory_features, inputs=inputs), functools.partial(predict_frame, model=model), spec(),
        tmp_path / "ok.nc", chunk=CHUNK, workers=2, client="local",
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="SYNTHETIC reader failure"):
        chunked.apply_chunked(
            FailingFeatures(inputs, bad=0), functools.partial(predict_frame, model=model), spec(),
            tmp_path / "bad.nc", chunk=CHUNK, workers=2, client="local",
        )  # fmt: skip
    assert len(RecordingCluster.made) == 2
    assert [len(c.workers) for c in RecordingCluster.made] == [0, 0]  # workers stopped
    assert [c.status for c in RecordingCluster.made] == [distributed.core.Status.closed] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.nc"]


def test_a_scheduler_address_gets_its_own_client_closed_after_the_run(tmp_path, reference, inputs, model, monkeypatch):
    made: list[distributed.Client] = []

    class RecordingClient(distributed.Client):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    with cluster.local_client(1, processes=False) as owner:
        address = owner.scheduler.address
        monkeypatch.setattr(distributed, "Client", RecordingClient)
        for name, features in (("ok.nc", functools.partial(memory_features, inputs=inputs)),
                               ("bad.nc", FailingFeatures(inputs, bad=3))):  # fmt: skip
            try:
                chunked.apply_chunked(
                    features, functools.partial(predict_frame, model=model), spec(), tmp_path / name,
                    chunk=CHUNK, client=address,
                )  # fmt: skip
            except RuntimeError as exc:
                assert name == "bad.nc" and "window 3" in " ".join(exc.__notes__)
        assert [c.status for c in made] == ["closed", "closed"]
        assert owner.status == "running"  # the cluster at the address keeps running
    np.testing.assert_array_equal(read(tmp_path / "ok.nc"), reference[0])
    assert not (tmp_path / "bad.nc").exists()


def test_it_refuses_a_client_of_another_type(tmp_path, inputs, model):
    with pytest.raises(TypeError, match="client must be"):
        chunked.apply_chunked(
            functools.partial(memory_features, inputs=inputs), functools.partial(predict_frame, model=model), spec(),
            tmp_path / "y.nc", chunk=CHUNK, client=2,
        )  # fmt: skip
    assert list(Path(tmp_path).iterdir()) == []
