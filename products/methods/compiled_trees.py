"""LightGBM models compiled to machine code (lleaves), checked against LightGBM, with LightGBM as the fallback.

A gradient-boosted forest is a fixed set of comparisons; LightGBM walks it as data. ``lleaves`` (Boehm,
2021) turns the model text into LLVM IR and compiles it for the host CPU, one function per forest, so a
prediction is straight-line machine code. On this project's ET model (300 trees, 31 leaves, 8 features)
it predicts 3 to 5 times faster than ``Booster.predict`` on the same rows (tests/bench/test_bench_generate.py).

Compiling costs seconds to a minute (LLVM optimisation of every tree) and is done once per model: the
object code is kept in a cache folder under the SHA-256 of the model text, the lleaves and llvmlite
versions and the host CPU (name and features), so a later run of the same model on the same kind of CPU
loads it in milliseconds. A :class:`CompiledTrees` pickles as the model text and that object code (Dask
ships it to workers once); a worker on another kind of CPU compiles again rather than run foreign code.

The compiled forest adds the trees' outputs in its own order, so it may differ from LightGBM in the last
bits of a float64 (about 1e-14 relative on the ET model): :func:`compile_lightgbm` predicts rows drawn
across every feature's range seen in training (with missing values), compares with LightGBM and
refuses (:class:`CompiledMismatch`) beyond ``rtol``/``atol``; :func:`compiled_or_none` turns any failure
(lleaves not installed, compile error, mismatch) into None and a reason, so callers keep LightGBM.

References
----------
Boehm, S. (2021): lleaves, an LLVM-based compiler for LightGBM decision trees,
https://github.com/siboehm/lleaves (``lleaves.Model.compile(cache=...)``, ``predict(data, n_jobs)``).
Ke, G., et al. (2017): LightGBM: A Highly Efficient Gradient Boosting Decision Tree, NeurIPS 30.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

CHECK_ROWS = 4096
"""Rows predicted by both LightGBM and the compiled forest before the compiled one is used."""
RTOL = 1e-9
ATOL = 1e-9
"""Largest accepted difference: ``|compiled - lightgbm| <= ATOL + RTOL * |lightgbm|`` on every checked row."""


class CompiledMismatch(ValueError):
    """The compiled forest does not give LightGBM's predictions within the tolerance."""


def _host() -> str:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    return f"{llvm.get_host_cpu_name()}|{llvm.get_host_cpu_features().flatten()}"


def versions() -> str:
    """``lleaves <version>, llvmlite <version>`` (installed)."""
    from importlib.metadata import version

    return f"lleaves {version('lleaves')}, llvmlite {version('llvmlite')}"


_COMPILE_LOCK = threading.Lock()


def _compile(text: str, cache: Path | None) -> tuple[Any, bytes]:
    """An lleaves model of ``text`` compiled (or loaded from ``cache``) and its object code."""
    import lleaves

    with _COMPILE_LOCK, tempfile.TemporaryDirectory(prefix="compiled-trees.") as folder:
        model_file = Path(folder) / "model.txt"
        model_file.write_text(text)
        target = cache if cache is not None and cache.exists() else Path(folder) / "model.o"
        model = lleaves.Model(model_file=str(model_file))
        model.compile(cache=str(target), finline=False)  # 6x quicker to compile, predicts as fast (measured)
        code = target.read_bytes()
        if cache is not None and not cache.exists():  # atomic: a reader never loads half a file
            fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(code)
            os.replace(tmp, cache)
    return model, code


def _load(text: str, code: bytes) -> Any:
    """An lleaves model of ``text`` from its object code (no compiling)."""
    import lleaves

    with _COMPILE_LOCK, tempfile.TemporaryDirectory(prefix="compiled-trees.") as folder:
        model_file, object_file = Path(folder) / "model.txt", Path(folder) / "model.o"
        model_file.write_text(text)
        object_file.write_bytes(code)
        model = lleaves.Model(model_file=str(model_file))
        model.compile(cache=str(object_file))
    return model


class CompiledTrees:
    """A LightGBM forest compiled by lleaves: ``predict(matrix)`` as ``Booster.predict`` (float64, one per row).

    Build with :func:`compile_lightgbm`. Picklable (model text and object code; see the module docstring).

    Attributes
    ----------
    key : str
        SHA-256 (hex) of the model text, lleaves/llvmlite versions and host CPU: the cache file's name.
    n_features : int
        Columns expected.
    n_jobs : int
        Threads per ``predict`` call (lleaves splits the rows; the GIL is released while it runs).
    max_difference : float
        Largest ``|compiled - lightgbm|`` seen on the check rows.
    """

    def __init__(self, text: str, model: Any, code: bytes, host: str, key: str, n_jobs: int, max_difference: float):
        self._text, self._model, self._code, self._host = text, model, code, host
        self.key, self.n_jobs, self.max_difference = key, int(n_jobs), float(max_difference)
        self.n_features = int(model.num_feature())

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions of the rows of ``matrix``.

        Parameters
        ----------
        matrix : numpy.ndarray
            (n_rows, n_features), any float dtype (float64 is used; other dtypes are copied), NaN = missing.

        Returns
        -------
        numpy.ndarray
            float64 (n_rows,): what LightGBM's ``predict`` gives, within :data:`RTOL`/:data:`ATOL`.

        Raises
        ------
        ValueError
            Not 2-D with ``n_features`` columns.
        """
        matrix = np.asarray(matrix, dtype="float64")
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a (n_rows, {self.n_features}) matrix, found shape {matrix.shape}")
        if not len(matrix):
            return np.zeros(0, dtype="float64")
        return np.asarray(self._model.predict(np.ascontiguousarray(matrix), n_jobs=self.n_jobs), dtype="float64")

    def __getstate__(self) -> dict:
        return {
            "text": self._text,
            "code": self._code,
            "host": self._host,
            "key": self.key,
            "n_jobs": self.n_jobs,
            "max_difference": self.max_difference,
        }

    def __setstate__(self, state: dict) -> None:
        text, code = state["text"], state["code"]
        host = _host()
        model = _load(text, code) if host == state["host"] else _compile(text, None)[0]  # another CPU: recompile
        self.__init__(text, model, code, host, state["key"], state["n_jobs"], state["max_difference"])  # type: ignore[misc]


def _booster(model):
    return model.booster_ if hasattr(model, "booster_") else model


def _ranges_and_thresholds(text: str) -> tuple[list[tuple[float, float]], list[tuple[int, float]]]:
    """Each feature's training range (``feature_infos``) and every (feature, threshold) split of a LightGBM
    model text (read from the text: ``Booster.dump_model`` takes half a second on a 300-tree model)."""
    ranges: list[tuple[float, float]] = []
    thresholds: list[tuple[int, float]] = []
    split_feature: list[int] | None = None
    for line in text.splitlines():
        if line.startswith("feature_infos=") and not ranges:
            for item in line.split("=", 1)[1].split():
                lo, _, hi = item.strip("[]").partition(":")
                try:
                    ranges.append((float(lo), float(hi)) if item.startswith("[") else (-1.0, 1.0))
                except ValueError:  # not a numeric range
                    ranges.append((-1.0, 1.0))
        elif line.startswith("split_feature="):
            split_feature = [int(v) for v in line.split("=", 1)[1].split()]
        elif line.startswith("threshold=") and split_feature is not None:
            thresholds += zip(split_feature, (float(v) for v in line.split("=", 1)[1].split()), strict=False)
            split_feature = None
        elif line.startswith("end of trees"):
            break
    return ranges, thresholds


def check_rows(text: str, n: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows spanning each feature's training range of a LightGBM model text, a few NaN: float64 (n, n_features).

    Uniform between each feature's min and max, then, row by row, each split threshold's exact value
    in its feature (where a comparison flips; up to half the rows) and 1 % missing values.
    """
    ranges, thresholds = _ranges_and_thresholds(text)
    rng = np.random.default_rng(seed)
    rows = np.empty((n, len(ranges)))
    for j, (lo, hi) in enumerate(ranges):
        rows[:, j] = rng.uniform(lo, hi, n) if hi > lo else lo
    for i, (j, value) in enumerate(thresholds[: n // 2]):
        rows[i, j] = value
    rows[rng.random(rows.shape) < 0.01] = np.nan
    return rows


def compile_lightgbm(
    model,
    *,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> CompiledTrees:
    """Compile a fitted LightGBM model with lleaves and check it against LightGBM.

    Parameters
    ----------
    model : lightgbm.LGBMModel or lightgbm.Booster
        Fitted; numeric features only (no pandas categoricals).
    cache_dir : str or os.PathLike, optional
        Folder of compiled object code (created if needed), reused by later calls with the same model
        text, library versions and host CPU. None: compile every time (seconds to a minute).
    n_jobs : int, optional
        Threads per predict call; default ``os.cpu_count()``.
    rtol, atol : float
        Accepted difference from LightGBM on :func:`check_rows`.

    Returns
    -------
    CompiledTrees

    Raises
    ------
    ImportError
        lleaves (or llvmlite) not installed.
    CompiledMismatch
        A checked row differs from LightGBM beyond the tolerance.
    """
    booster = _booster(model)
    text = booster.model_to_string(num_iteration=-1)
    host = _host()
    key = hashlib.sha256(f"{versions()}\n{host}\n{text}".encode()).hexdigest()
    cache = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache = Path(cache_dir) / f"lleaves-{key}.o"
    compiled, code = _compile(text, cache)
    trees = CompiledTrees(text, compiled, code, host, key, n_jobs or os.cpu_count() or 1, 0.0)
    rows = check_rows(text)
    expected = np.asarray(booster.predict(rows), dtype="float64")
    got = trees.predict(rows)
    difference = np.abs(got - expected)
    if not np.all(difference <= atol + rtol * np.abs(expected)):
        raise CompiledMismatch(
            f"compiled forest differs from LightGBM by up to {float(difference.max()):.3g} on "
            f"{int((difference > atol + rtol * np.abs(expected)).sum())} of {len(rows)} check rows "
            f"(rtol {rtol:g}, atol {atol:g})"
        )
    trees.max_difference = float(difference.max())
    return trees


def compiled_or_none(model, **options) -> tuple[CompiledTrees | None, str]:
    """:func:`compile_lightgbm`, or None and the reason (lleaves missing, compile error, mismatch): use LightGBM then."""
    try:
        return compile_lightgbm(model, **options), ""
    except Exception as exc:  # any failure means: keep LightGBM
        return None, f"{type(exc).__name__}: {exc}"
