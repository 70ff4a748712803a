"""Cross-validation splitters that keep stations, years or spatial blocks out of training (no Django).

Each splitter takes the columns of a pandas DataFrame (one row per station-time sample) and yields
``(train_idx, test_idx)`` integer position arrays into that frame, so a station (or year, or block)
is never in both the training and the test set of one fold. Random row splits inflate scores through
temporal and spatial autocorrelation; report them only beside these (METHODS.md, validation).

References
----------
Pedregosa, F., et al. (2011): Scikit-learn: machine learning in Python. J. Mach. Learn. Res. 12,
2825-2830 (``GroupKFold``, ``LeaveOneGroupOut``).
Roberts, D. R., et al. (2017): Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure. Ecography 40, 913-929, doi:10.1111/ecog.02881.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

Split = tuple[np.ndarray, np.ndarray]


def _split(splitter, groups) -> Iterator[Split]:
    g = np.asarray(groups)
    yield from splitter.split(np.zeros((g.size, 1)), groups=g)


def leave_station_out(groups, n_splits: int | None = 5) -> Iterator[Split]:
    """Station-grouped folds: GroupKFold with ``n_splits``, or leave-one-station-out when None.

    Parameters
    ----------
    groups : array_like
        Shape (n_samples,), station id of each row (any hashable dtype, e.g. ``frame["station"]``).
    n_splits : int or None, default 5
        Number of folds (<= number of stations); None gives one fold per station (LeaveOneGroupOut).

    Yields
    ------
    train_idx, test_idx : numpy.ndarray
        1-D int64 row positions; each station is in the test set of exactly one fold.

    Raises
    ------
    ValueError
        ``n_splits`` exceeds the number of stations (raised by scikit-learn on iteration).

    References
    ----------
    scikit-learn ``GroupKFold`` / ``LeaveOneGroupOut`` (Pedregosa et al. 2011).
    """
    yield from _split(LeaveOneGroupOut() if n_splits is None else GroupKFold(n_splits=n_splits), groups)


def year_held_out(times) -> Iterator[Split]:
    """One fold per calendar year: all rows of that year are the test set (LeaveOneGroupOut on the year).

    Parameters
    ----------
    times : array_like
        Shape (n_samples,), datetime64 (or anything ``pandas.DatetimeIndex`` accepts), UTC.

    Yields
    ------
    train_idx, test_idx : numpy.ndarray
        1-D int64 row positions; one fold per distinct year, in increasing year order.

    References
    ----------
    scikit-learn ``LeaveOneGroupOut``; Roberts et al. (2017), doi:10.1111/ecog.02881.
    """
    yield from _split(LeaveOneGroupOut(), pd.DatetimeIndex(np.asarray(times)).year.to_numpy())


def block_ids(lat, lon, block_deg: float) -> np.ndarray:
    """Integer id of the block_deg x block_deg latitude/longitude cell holding each point.

    Parameters
    ----------
    lat, lon : array_like
        Shape (n_samples,), float, degrees north in [-90, 90] and degrees east in [-180, 360).
    block_deg : float
        Block edge length in degrees (> 0).

    Returns
    -------
    numpy.ndarray
        Shape (n_samples,), int64 block ids (equal for points in the same cell).

    Raises
    ------
    ValueError
        ``block_deg`` <= 0 or a coordinate is not finite.
    """
    la, lo = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    if block_deg <= 0 or not (np.isfinite(la).all() and np.isfinite(lo).all()):
        raise ValueError("block_deg must be > 0 and coordinates finite")
    i = np.floor((la + 90.0) / block_deg).astype("int64")
    j = np.floor(((lo + 180.0) % 360.0) / block_deg).astype("int64")
    return i * (int(np.ceil(360.0 / block_deg)) + 1) + j


def spatial_blocks(lat, lon, block_deg: float, n_splits: int = 5, seed: int | None = 0) -> Iterator[Split]:
    """Spatial-block folds: stations binned into lat/lon blocks, then GroupKFold over the blocks.

    Neighbouring stations in the same block are always in the same fold, so a test station has no
    training station closer than its block boundary. Implemented on scikit-learn rather than a
    spatial-CV library: none is installed (verde ``BlockKFold``, spacv), the binning is a few lines,
    and GroupKFold is the same well-tested splitter used for stations, so the folds stay comparable.

    Parameters
    ----------
    lat, lon : array_like
        Shape (n_samples,), float, degrees north / east of each row's station.
    block_deg : float
        Block edge length in degrees (> 0), ideally larger than the autocorrelation range.
    n_splits : int, default 5
        Number of folds (<= number of non-empty blocks).
    seed : int or None, default 0
        Seed for shuffling blocks among folds (GroupKFold ``shuffle=True``); None keeps scikit-learn's
        deterministic size-balanced assignment.

    Yields
    ------
    train_idx, test_idx : numpy.ndarray
        1-D int64 row positions; each block is in the test set of exactly one fold.

    Raises
    ------
    ValueError
        Bad ``block_deg`` or coordinates, or ``n_splits`` exceeds the number of blocks.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881; scikit-learn ``GroupKFold``.
    """
    kf = GroupKFold(n_splits=n_splits) if seed is None else GroupKFold(n_splits, shuffle=True, random_state=seed)
    yield from _split(kf, block_ids(lat, lon, block_deg))


def assert_disjoint(train_groups, test_groups) -> None:
    """Raise if any group (station) is in both the training and the test set.

    This is the guarantee that a station used for labels, training or assimilation never validates.

    Parameters
    ----------
    train_groups, test_groups : array_like
        1-D, station ids (any hashable dtype) of the training and test rows.

    Raises
    ------
    ValueError
        Some station is in both; the message lists up to 10 of them.
    """
    both = np.intersect1d(np.asarray(train_groups), np.asarray(test_groups))
    if both.size:
        raise ValueError(f"{both.size} station(s) in both train and test: {both[:10].tolist()}")


def year_blocks_held_out(times, block: int = 3, buffer: int = 2) -> Iterator[Split]:
    """Blocks of consecutive calendar years held out, with a buffer of years left out of training on either side.

    The years from the first year present are cut into blocks of ``block`` consecutive years
    (``y0 .. y0+block-1``, ``y0+block ..``); each non-empty block is the test set of one fold, and
    the training set is every row whose year is more than ``buffer`` years from the block, so no
    training month lies within ``12 * buffer`` months of a test month. Use a buffer at least as long
    as the predictors' (and the target's) memory: with one year held out and no buffer, features that
    remember 12-24 months carry the neighbouring years' information into the test year.

    Parameters
    ----------
    times : array_like
        Shape (n_samples,), datetime64 (or anything ``pandas.DatetimeIndex`` accepts), UTC.
    block : int, default 3
        Years per held-out block (>= 1).
    buffer : int, default 2
        Years on either side of a block that neither train nor test in its fold (>= 0).

    Yields
    ------
    train_idx, test_idx : numpy.ndarray
        1-D int64 row positions, in increasing block order; each row is in the test set of exactly one
        fold; the training set may be empty (a short record), callers skip such folds.

    Raises
    ------
    ValueError
        ``block`` < 1 or ``buffer`` < 0.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881 (blocked cross-validation with buffers).
    """
    if block < 1 or buffer < 0:
        raise ValueError(f"block must be >= 1 and buffer >= 0, found block={block}, buffer={buffer}")
    years = pd.DatetimeIndex(np.asarray(times)).year.to_numpy()
    if not years.size:
        return
    ids = (years - years.min()) // block
    for k in np.unique(ids):
        test = np.flatnonzero(ids == k)
        first, last = years.min() + k * block, years.min() + (k + 1) * block - 1
        train = np.flatnonzero((years < first - buffer) | (years > last + buffer))
        yield train.astype("int64"), test.astype("int64")
