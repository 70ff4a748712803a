"""Shared helpers of the eddy-covariance flux readers (FLUXNET2015, AmeriFlux BASE, REddyProc, ECOSTRESS cal/val).

Everything here is pure (numpy/pandas, no Django):

* physics: :func:`latent_heat_of_vaporization`, :func:`le_to_et`;
* timestamps: :func:`parse_timestamps` (FLUXNET/AmeriFlux ``YYYYMMDDHHMM``, daily ``YYYYMMDD``,
  monthly ``YYYYMM``) and :func:`check_time_order`;
* half-hourly/hourly to daily: :func:`aggregate_daily` (QC filter, coverage threshold) and
  :func:`steps_to_daily` (the same plus daily ET from LE);
* output: :func:`long_table`, :func:`station_table`, :func:`site_from_lookup`, :func:`finish`.

The files themselves are read by :func:`~.tables.read_table` (bounded, line-exact delimited text);
site coordinates missing from a file come from the CARDAMOM-FluxVal location table
(:func:`~.cardamom.read_locations`).

References
----------
Pastorello, G., et al. (2020): The FLUXNET2015 dataset and the ONEFlux processing pipeline for eddy
covariance data. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3.
Henderson-Sellers, B. (1984): A new formula for latent heat of vaporization of water as a function of
temperature. Q. J. R. Meteorol. Soc. 110, 1186-1190, doi:10.1002/qj.49711046626.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .base import PointData, ReaderError
from .cardamom import read_locations
from .tables import Table

#: Air temperature (degC) used for the latent heat of vaporization where none was measured.
REFERENCE_TA = 20.0
#: Variables summed (not averaged) by :func:`aggregate_daily`: per-step amounts in mm.
SUM_VARIABLES = ("et", "p")
_TIMESTAMP_FORMATS = {12: "YYYYMMDDHHMM", 8: "YYYYMMDD", 6: "YYYYMM"}


# --- physics ---------------------------------------------------------------------------------------------


def latent_heat_of_vaporization(ta_degc):
    """Latent heat of vaporization of water as a function of air temperature.

    lambda = 1.91846e6 * (T / (T - 33.91))**2 J kg-1, T in kelvin (Henderson-Sellers 1984, eq. 8);
    2.5008e6 J kg-1 at 0 degC, 2.4532e6 J kg-1 at 20 degC (FAO-56's linear 2.501 - 0.002361 T MJ kg-1
    differs by less than 0.3 % between -10 and 40 degC).

    Parameters
    ----------
    ta_degc : float or array_like of float
        Air temperature, degC, any shape; NaN propagates.

    Returns
    -------
    numpy.ndarray or float
        Same shape as ``ta_degc``, float64, J kg-1.

    References
    ----------
    Henderson-Sellers, B. (1984), Q. J. R. Meteorol. Soc. 110, 1186-1190, doi:10.1002/qj.49711046626.
    """
    t = np.asarray(ta_degc, dtype="float64") + 273.15
    return (1.91846e6 * (t / (t - 33.91)) ** 2)[()]


def le_to_et(le_w_m2, ta_degc, seconds):
    """Evapotranspiration over a time step from the latent heat flux.

    ET = LE * seconds / lambda(TA) kg m-2, and 1 kg m-2 of water is 1 mm.

    Parameters
    ----------
    le_w_m2 : float or array_like of float
        Latent heat flux, W m-2 (mean over the step); NaN propagates.
    ta_degc : float or array_like of float
        Air temperature, degC, broadcast against ``le_w_m2`` (see :func:`latent_heat_of_vaporization`).
    seconds : float
        Length of the step, s (1800 for a half-hour, 86400 for a day, 3600 for a rate in mm h-1).

    Returns
    -------
    numpy.ndarray or float
        float64, mm per step (e.g. mm per half-hour for 1800 s, mm d-1 for 86400 s).

    References
    ----------
    Henderson-Sellers (1984), doi:10.1002/qj.49711046626, for lambda.
    """
    return (np.asarray(le_w_m2, dtype="float64") * float(seconds) / latent_heat_of_vaporization(ta_degc))[()]


def ta_for_lambda(ta_degc) -> np.ndarray | np.float64:
    """Air temperature for :func:`latent_heat_of_vaporization`: ``ta_degc`` with NaN replaced by :data:`REFERENCE_TA`.

    Parameters
    ----------
    ta_degc : array_like of float or None
        Air temperature, degC; None when the file has none.

    Returns
    -------
    numpy.ndarray or numpy.float64
        float64, degC, the shape of ``ta_degc`` (a scalar :data:`REFERENCE_TA` when it is None; lambda
        changes by about 0.1 % per kelvin, so a missing temperature costs about 1 % of ET at most for
        10 K off, rather than the step).
    """
    if ta_degc is None:
        return np.float64(REFERENCE_TA)
    ta = np.asarray(ta_degc, dtype="float64")
    return np.where(np.isnan(ta), REFERENCE_TA, ta)


# --- timestamps -------------------------------------------------------------------------------------------


def parse_timestamps(table: Table, column: str, digits: int) -> np.ndarray:
    """Parse a FLUXNET/AmeriFlux timestamp column (``YYYYMMDDHHMM``, ``YYYYMMDD`` or ``YYYYMM``).

    Parameters
    ----------
    table : Table
        From :func:`read_table`, with ``column`` read as text.
    column : str
        Timestamp column (``TIMESTAMP_START``, ``TIMESTAMP_END``, ``TIMESTAMP``).
    digits : {12, 8, 6}
        Expected number of digits.

    Returns
    -------
    numpy.ndarray
        datetime64[ns], one per row, timezone-naive (as stamped in the file).

    Raises
    ------
    ReaderError
        A value that is not ``digits`` digits or not a calendar date/time (line and column named).
    """
    human = _TIMESTAMP_FORMATS[digits]
    text = np.strings.strip(table.data[column].fillna("").to_numpy(dtype=str))
    ok = (np.strings.str_len(text) == digits) & np.strings.isdigit(text)
    v = np.where(ok, text, "0").astype("int64")  # vectorised: about 10x faster than pandas.to_datetime(format=...)
    v = {12: v, 8: v * 10_000, 6: v * 1_000_000 + 10_000}[digits]  # -> YYYYMMDDHHMM (monthly: day 1)
    ymd, hhmm = np.divmod(v, 10_000)
    (year, md), (hour, minute) = np.divmod(ymd, 10_000), np.divmod(hhmm, 100)
    month, day = np.divmod(md, 100)
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    date = month_start.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (date.astype("datetime64[M]") == month_start)
    ok &= (hour < 24) & (minute < 60)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        found = table.data[column].iloc[i]
        raise ReaderError(
            table.path,
            f"expected a {human} timestamp, found {'nothing' if pd.isna(found) else repr(found)}",
            line=table.line(i),
            field=column,
        )
    return date.astype("datetime64[ns]") + (hour * 60 + minute).astype("timedelta64[m]")


def check_time_order(path: str | os.PathLike, times: np.ndarray, lines: np.ndarray, field: str) -> None:
    """Raise unless ``times`` increase strictly.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    times : numpy.ndarray
        datetime64[ns], in file order.
    lines : numpy.ndarray
        1-based line number of each time.
    field : str
        Column named in errors.

    Raises
    ------
    ReaderError
        ``duplicate timestamp`` (equal to the previous row) or ``timestamps out of order`` (earlier
        than the previous row), naming the line and both values.
    """
    if len(times) < 2:
        return
    step = np.diff(times.astype("datetime64[ns]").astype("int64"))
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        now, before = pd.Timestamp(times[i]), pd.Timestamp(times[i - 1])
        if step[bad[0]] == 0:
            raise ReaderError(
                path, f"duplicate timestamp {now} (also at line {lines[i - 1]})", line=int(lines[i]), field=field
            )
        raise ReaderError(
            path,
            f"timestamps out of order: {now} follows {before} (line {lines[i - 1]}); expected increasing times",
            line=int(lines[i]),
            field=field,
        )


def check_step(
    table: Table, start: np.ndarray, end: np.ndarray, step: pd.Timedelta, field: str = "TIMESTAMP_END"
) -> None:
    """Raise unless every interval ``end - start`` equals ``step`` and starts on the ``step`` grid.

    Parameters
    ----------
    table : Table
        For the file name and line numbers.
    start, end : numpy.ndarray
        datetime64[ns] interval bounds per row.
    step : pandas.Timedelta
        Expected interval (30 or 60 minutes).
    field : str, optional
        Column named in errors.

    Raises
    ------
    ReaderError
        The first row whose interval is not ``step`` long or not aligned to it.
    """
    ns = step.value
    bad = ((end - start).astype("int64") != ns) | (start.astype("int64") % ns != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReaderError(
            table.path,
            f"expected {int(step.total_seconds() // 60)}-minute intervals on the clock "
            f"grid, found {pd.Timestamp(start[i])} to {pd.Timestamp(end[i])}",
            line=table.line(i),
            field=field,
        )


# --- aggregation ------------------------------------------------------------------------------------------


def aggregate_daily(
    frame: pd.DataFrame,
    *,
    min_coverage: float = 0.8,
    qc_column: str | Mapping[str, str] | None = None,
    good_qc: Sequence[float] = (0, 1),
    step: pd.Timedelta | None = None,
    sums: Sequence[str] = SUM_VARIABLES,
) -> pd.DataFrame:
    """Daily values of a half-hourly or hourly series, with a QC filter and a coverage threshold.

    A step is *valid* for a column when its value is not NaN and, where the column has a QC column,
    its flag is in ``good_qc``. For each calendar day (of the interval start times, in the time zone
    of the index) the coverage is ``valid steps / steps per day``. Days with coverage below
    ``min_coverage`` get NaN. Otherwise the daily value is the mean of the valid steps, and for the
    amounts in ``sums`` (ET and precipitation in mm per step) that mean times the steps per day,
    i.e. the daily sum in mm d-1, equal to the plain sum at full coverage and not biased low by
    missing steps.

    Parameters
    ----------
    frame : pandas.DataFrame
        DatetimeIndex of interval start times (datetime64, regular ``step``, sorted); one float
        column per variable (NaN where missing) and the QC columns.
    min_coverage : float, optional
        Fraction of a day's steps that must be valid (default 0.8: 39 of 48 half-hours, 20 of 24 hours).
    qc_column : str or mapping, optional
        One QC column for every variable, or ``{variable column: QC column}`` (variables without
        an entry are filtered for NaN only). QC columns are not aggregated.
    good_qc : sequence of float, optional
        Flags that count as good (default (0, 1): FLUXNET2015 measured and good-quality gap-fill).
    step : pandas.Timedelta, optional
        The time step; by default the most common difference of the index. Must divide a day.
    sums : sequence of str, optional
        Columns aggregated as daily sums (default ``("et", "p")``).

    Returns
    -------
    pandas.DataFrame
        Index ``time`` (datetime64[ns], midnight of each day with at least one step); for each
        variable column ``v``: ``v`` (float64, daily mean or sum, NaN below ``min_coverage``) and
        ``v_coverage`` (float64, fraction of valid steps in [0, 1]).

    Raises
    ------
    ValueError
        An index that is not a sorted DatetimeIndex, or a step that does not divide a day.

    References
    ----------
    Pastorello et al. (2020), doi:10.1038/s41597-020-0534-3 (QC flag meanings; daily FLUXNET2015
    values are averages of the half-hours, QC the fraction of measured and good-quality gap-filled ones).
    """
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or not index.is_monotonic_increasing:
        raise ValueError("expected a sorted DatetimeIndex of interval start times")
    if step is None:
        step = pd.Series(np.diff(index.asi8)).mode().iloc[0] if len(index) > 1 else pd.Timedelta("30min").value
        step = pd.Timedelta(step)
    per_day, rest = divmod(pd.Timedelta("1D"), step)
    if rest or per_day < 1:
        raise ValueError(f"a step of {step} does not divide a day")
    qc_map = dict(qc_column) if isinstance(qc_column, Mapping) else {}
    qc_cols = set(qc_map.values()) | ({qc_column} if isinstance(qc_column, str) else set())
    variables = [c for c in frame.columns if c not in qc_cols]
    good = np.asarray(good_qc, dtype="float64")
    values = frame[variables].to_numpy(dtype="float64")
    valid = ~np.isnan(values)
    for k, name in enumerate(variables):
        qc = qc_column if isinstance(qc_column, str) else qc_map.get(name)
        if qc is not None:
            valid[:, k] &= np.isin(frame[qc].to_numpy(dtype="float64"), good)
    day = index.floor("D").rename("time")
    masked = pd.DataFrame(np.where(valid, values, np.nan), columns=variables).groupby(day.to_numpy())
    mean = masked.mean()
    coverage = pd.DataFrame(valid, columns=variables).groupby(day.to_numpy()).sum() / per_day
    out = {}
    for name in variables:
        daily = mean[name] * per_day if name in sums else mean[name]
        out[name] = daily.where(coverage[name] >= min_coverage)
        out[f"{name}_coverage"] = coverage[name].astype("float64")
    result = pd.DataFrame(out)
    result.index = pd.DatetimeIndex(result.index, name="time").astype("datetime64[ns]")
    return result


def steps_to_daily(
    path: str | os.PathLike,
    start,
    values: Mapping[str, object],
    units: Mapping[str, str],
    *,
    step: pd.Timedelta,
    qc: Mapping[str, object] | None = None,
    good_qc: Sequence[float] = (0, 1),
    min_coverage: float = 0.8,
    le_column: str = "LE",
) -> tuple[pd.DatetimeIndex, list]:
    """Daily series of a half-hourly/hourly tower record, with daily ET from LE, ready for :func:`long_table`.

    ET per step is ``le_to_et(le, ta, step)`` (mm; lambda at the step's air temperature ``ta``, at
    :data:`REFERENCE_TA` where that is missing) and shares LE's QC; then :func:`aggregate_daily`.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    start : array_like of datetime64
        Interval start times (local standard time of the tower), sorted, on the ``step`` grid.
    values : mapping
        Standard variable name -> float array (NaN where missing); must hold ``le`` (W m-2) and
        may hold ``ta`` (degC).
    units : mapping
        Variable -> UDUNITS units per step (``p`` in mm per step becomes ``mm d-1``).
    step : pandas.Timedelta
        30 or 60 minutes.
    qc : mapping, optional
        Variable -> QC flag array (variables without one are filtered for NaN only).
    good_qc : sequence of float, optional
        Good flags (default measured and good-quality gap-fill, FLUXNET2015 0 and 1).
    min_coverage : float, optional
        See :func:`aggregate_daily`.
    le_column : str, optional
        The file's LE column, named when no day is left.

    Returns
    -------
    tuple
        ``(time, series)``: days (DatetimeIndex, datetime64[ns], local midnight) and a list of
        ``(variable, daily values float64, units, coverage flags)`` including ``et`` (mm d-1).

    Raises
    ------
    ReaderError
        No day with enough valid LE (all -9999, all bad QC, or too sparse).
    """
    qc = dict(qc or {})
    frame = pd.DataFrame(
        {k: np.asarray(v, dtype="float64") for k, v in values.items()},
        index=pd.DatetimeIndex(np.asarray(start, dtype="datetime64[ns]")),
    )
    frame["et"] = le_to_et(
        frame["le"].to_numpy(), ta_for_lambda(frame["ta"] if "ta" in frame else None), step.total_seconds()
    )
    if "le" in qc:
        qc["et"] = qc["le"]
    for name, flags in qc.items():
        frame[f"{name}__qc"] = np.asarray(flags, dtype="float64")
    daily = aggregate_daily(
        frame, min_coverage=min_coverage, qc_column={k: f"{k}__qc" for k in qc}, good_qc=good_qc, step=step
    )
    if not daily["le"].notna().any():
        per_day = pd.Timedelta("1D") // step
        rule = f" with QC in {tuple(good_qc)}" if "le" in qc else ""
        raise ReaderError(
            path,
            f"no day left with at least {min_coverage:.0%} of its {per_day} steps of valid "
            f"{le_column}{rule}: expected some measured latent heat flux",
            field=le_column,
        )
    all_units = {**units, "et": "mm", "le": units.get("le", "W m-2")}
    series = [
        (
            name,
            daily[name].to_numpy(),
            "mm d-1" if name in SUM_VARIABLES else all_units[name],
            fraction_flags(daily[f"{name}_coverage"]),
        )
        for name in (*values, "et")
    ]
    return daily.index, series


def fraction_flags(fraction) -> np.ndarray:
    """Quality flags for fractions of good data: ``"0.958"`` (three decimals), ``""`` for NaN.

    Parameters
    ----------
    fraction : array_like of float
        Fractions in [0, 1] (coverage of valid steps, or FLUXNET2015 DD-MM QC values).

    Returns
    -------
    numpy.ndarray
        object array of str, same length.
    """
    f = np.asarray(fraction, dtype="float64")
    return np.array(["" if np.isnan(x) else f"{x:.3f}" for x in f], dtype=object)


# --- output -----------------------------------------------------------------------------------------------


def long_table(code: str, time, series: Iterable[tuple[str, object, str, object]]) -> pd.DataFrame:
    """Long observation table (see :class:`~.base.PointData`) of one station; NaN values dropped.

    Parameters
    ----------
    code : str
        Station code.
    time : array_like of datetime64
        Time of each row of the series (UTC or as documented by the reader).
    series : iterable of (variable, values, units, flags)
        ``values`` float array_like aligned with ``time``; ``flags`` a str or an array_like of str.

    Returns
    -------
    pandas.DataFrame
        Columns ``station``, ``variable``, ``time`` (datetime64[ns]), ``value`` (float64),
        ``units``, ``quality_flag`` (str), ``is_validation`` (False), grouped by variable.
    """
    time = np.asarray(time, dtype="datetime64[ns]")
    parts = []
    for variable, values, units, flags in series:
        v = np.asarray(values, dtype="float64")
        keep = ~np.isnan(v)
        n = int(keep.sum())
        flags = np.full(len(v), flags, dtype=object) if isinstance(flags, str) else np.asarray(flags, dtype=object)
        parts.append(
            pd.DataFrame(
                {
                    "station": np.full(n, code, dtype=object),
                    "variable": np.full(n, variable, dtype=object),
                    "time": time[keep],
                    "value": v[keep],
                    "units": np.full(n, units, dtype=object),
                    "quality_flag": flags[keep],
                    "is_validation": np.zeros(n, dtype=bool),
                }
            )
        )
    if not parts:
        parts = [
            pd.DataFrame(
                {
                    "station": [],
                    "variable": [],
                    "time": np.array([], "datetime64[ns]"),
                    "value": np.array([], "float64"),
                    "units": [],
                    "quality_flag": [],
                    "is_validation": np.array([], bool),
                }
            )
        ]
    out = pd.concat(parts, ignore_index=True)
    for c in ("station", "variable", "units", "quality_flag"):
        out[c] = out[c].astype(object)
    return out


def check_coordinates(path: str | os.PathLike, lat, lon, field: str, line: int | None = None) -> tuple[float, float]:
    """``(lat, lon)`` as floats, or ReaderError naming ``field`` when not in [-90, 90] x [-180, 180].

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    lat, lon : float
        Degrees north / east (WGS84).
    field : str
        Where the coordinates came from (e.g. ``"sites['US-Ha1']"`` or ``"lat"``).
    line : int, optional
        Line of the coordinates in a file.

    Returns
    -------
    tuple of float

    Raises
    ------
    ReaderError
        A non-numeric or out-of-range coordinate.
    """
    for value, name, limit in ((lat, "lat", 90), (lon, "lon", 180)):
        try:
            ok = -limit <= float(value) <= limit
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ReaderError(
                path,
                f"expected {name} in degrees in [-{limit}, {limit}], found {value!r}",
                line=line,
                field=f"{field}.{name}" if field != name else name,
            )
    return float(lat), float(lon)


def station_table(path: str | os.PathLike, rows: Iterable[Mapping]) -> pd.DataFrame:
    """Station table (see :class:`~.base.PointData`) from dicts with the station columns.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    rows : iterable of mapping
        ``code``, ``lat``, ``lon`` required; ``name`` (default: code), ``elevation`` (m, NaN),
        ``land_cover`` (IGBP, ""), ``network``, ``source``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ReaderError
        Coordinates out of range (see :func:`check_coordinates`).
    """
    out = []
    for r in rows:
        lat, lon = check_coordinates(path, r["lat"], r["lon"], r.get("field", "lat/lon"), r.get("line"))
        elevation = r.get("elevation")
        out.append(
            {
                "code": str(r["code"]),
                "name": str(r.get("name") or r["code"]),
                "lat": lat,
                "lon": lon,
                "elevation": np.nan if elevation is None or pd.isna(elevation) else float(elevation),
                "land_cover": str(r.get("land_cover") or ""),
                "network": str(r.get("network", "")),
                "source": str(r.get("source", "")),
            }
        )
    table = pd.DataFrame(out, columns=["code", "name", "lat", "lon", "elevation", "land_cover", "network", "source"])
    for c in ("code", "name", "land_cover", "network", "source"):
        table[c] = table[c].astype(object)
    for c in ("lat", "lon", "elevation"):
        table[c] = table[c].astype("float64")
    return table


#: Location table of 204 FLUXNET2015 sites shipped with CARDAMOM-FluxVal (Flux_name, LC, Lat, lon),
#: relative to the shared data folder ($SHARED_DATA_DIR).
CARDAMOM_LOCATIONS = Path("cardamom_fluxval") / "location_fluxnet.csv"


def default_locations(path: str | os.PathLike) -> Path | None:
    """The site location table used when a reader is given neither ``sites`` nor ``locations``.

    Looked up in order: ``location_fluxnet.csv`` next to the data file, then
    ``$SHARED_DATA_DIR/cardamom_fluxval/location_fluxnet.csv`` (:data:`CARDAMOM_LOCATIONS`).

    Parameters
    ----------
    path : str or os.PathLike
        The data file.

    Returns
    -------
    pathlib.Path or None
        The first existing file, or None.
    """
    candidates = [Path(path).parent / "location_fluxnet.csv"]
    if os.environ.get("SHARED_DATA_DIR"):
        candidates.append(Path(os.environ["SHARED_DATA_DIR"]) / CARDAMOM_LOCATIONS)
    return next((c for c in candidates if c.is_file()), None)


def site_from_lookup(
    path: str | os.PathLike, code: str, *, sites: Mapping | None = None, locations: str | os.PathLike | None = None
) -> dict:
    """Coordinates and land cover of a tower whose data file carries none (FLUXNET2015, AmeriFlux BASE).

    Parameters
    ----------
    path : str or os.PathLike
        The data file (named in errors; its folder is searched by :func:`default_locations`).
    code : str
        Site code (``CC-XXX``).
    sites : mapping, optional
        ``{code: {"lat": .., "lon": .., "elevation": .. (optional, m), "igbp": .. (optional),
        "name": .. (optional)}}``; takes precedence.
    locations : str or os.PathLike, optional
        CSV in the layout of CARDAMOM-FluxVal's ``location_fluxnet.csv`` (``Flux_name``, ``LC``
        (IGBP), ``Lat``, ``lon``); default :func:`default_locations`.

    Returns
    -------
    dict
        ``code``, ``name``, ``lat``, ``lon``, ``elevation`` (NaN when unknown), ``land_cover``,
        ``field`` and ``line`` (where the coordinates came from).

    Raises
    ------
    ReaderError
        No table given or found, the code is not in it, coordinates out of range, or an error of
        :func:`~.cardamom.read_locations`.
    """
    if sites is not None:
        if code not in sites:
            raise ReaderError(path, f"no coordinates for site {code!r} in the sites mapping given", field="sites")
        s = sites[code]
        return {
            "code": code,
            "name": s.get("name", code),
            "lat": s.get("lat"),
            "lon": s.get("lon"),
            "elevation": s.get("elevation"),
            "land_cover": s.get("igbp", s.get("land_cover", "")),
            "field": f"sites[{code!r}]",
        }
    locations = Path(locations) if locations is not None else default_locations(path)
    if locations is None:
        raise ReaderError(
            path,
            f"the file has no coordinates for site {code!r}: pass sites={{code: {{lat, lon}}}} or "
            f"locations=<csv like $SHARED_DATA_DIR/{CARDAMOM_LOCATIONS.as_posix()}>",
            field="site",
        )
    table = read_locations(locations)
    match = np.flatnonzero(table["Flux_name"].to_numpy() == code)
    if not match.size:
        raise ReaderError(
            path,
            f"no coordinates for site {code!r} in {locations.name} ({len(table)} sites): pass "
            "sites= or another locations= table",
            field="site",
        )
    row = table.iloc[int(match[0])]
    return {
        "code": code,
        "name": code,
        "lat": row["Lat"],
        "lon": row["lon"],
        "elevation": np.nan,
        "land_cover": row["LC"],
        "field": locations.name,
        "line": int(match[0]) + 2,
    }


def finish(path: str | os.PathLike, stations: pd.DataFrame, observations: pd.DataFrame) -> PointData:
    """Validated :class:`~.base.PointData`, observations sorted by station, variable and time.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    stations, observations : pandas.DataFrame
        From :func:`station_table` and :func:`long_table`.

    Returns
    -------
    PointData

    Raises
    ------
    ReaderError
        Any error of :meth:`~.base.PointData.validate`.
    """
    observations = observations.sort_values(["station", "variable", "time"], kind="stable").reset_index(drop=True)
    return PointData(stations.reset_index(drop=True), observations).validate(path)


def location_companions(path: str | os.PathLike) -> list[Path]:
    """Files read together with a FLUXNET2015 or AmeriFlux CSV (reader contract ``companions``).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV.

    Returns
    -------
    list of pathlib.Path
        The location table the reader uses by default (:func:`default_locations`), or [].
    """
    found = default_locations(path)
    return [found] if found is not None else []
