"""The soil-moisture ML-DA pipeline: real ISMN (+ ASCAT/ERS when ingested) pieces and the synthetic twin.

What runs on real data (``data_kind = "real"`` in ``sm_mlda_real.nc``, splits ``real_*``):

* ISMN in-situ soil moisture (reader kind ``ismn``; essential): daily means of good-quality hourly
  surface values (:func:`products.generators.sm_mlda.ismn_daily`), written as station series.
* ASCAT/ERS surface soil moisture (reader kind ``ascat``; optional): screening for frozen soil, snow
  and processing flags, daily means, a leave-year-out climatological background fitted on the
  retrievals assimilated only, Newtonian nudging of that background toward the real retrievals (fixed
  gain: no independent third product exists at those points for a TC gain), scored on real retrievals
  withheld from both: whole calendar months (about ``holdout_fraction`` of each grid point's months,
  drawn at random per point) with a buffer of ``holdout_buffer_days`` days before each left out of
  the nudging, so neither day-to-day autocorrelation nor the increment memory carries an assimilated
  retrieval into the scored month (split ``real_withheld_months``, the headline, units %); and, beside
  it to show the inflation, random single days (split ``real_withheld``, as before issue 16).
* Collocation of the satellite grid points with the ISMN stations; where a pair exists the satellite
  and nudged series, rescaled to the in-situ climatology (mean and spread fitted on the station's
  other years), are validated on the station (split ``real_insitu``). In the sample data no pair
  exists (the ASCAT/ERS cells lie in Europe, away from the ISMN test stations), which the summary
  states with the distances.

Uncertainty (issue 17): each file publishes a standard error beside its nudged estimate
(``sm_mlda_standard_error`` in the twin, ``ssm_nudged_standard_error`` in the real file, linked through
``ancillary_variables``): TC error standard deviations of background and retrieval propagated through the
nudging (:func:`products.generators.sm_mlda.nudged_error_series`). Its coverage of the central
``uncertainty_nominal`` interval is measured at held-out samples only: the twin's validation pixels against
the synthetic truth (and, in the summary, against the twin stations with their known error added), the real
withheld months against the withheld retrievals with the retrieval's TC error added (the retrieval is not
independent truth). The run summary lists both under ``uncertainty``.

What could not run on real data, and why: TC-merged labels (no triple of collocated SM products),
the LightGBM model (no forcing series at the SM points) and therefore the ML-DA product itself and its
in-situ validation. The whole chain runs on the synthetic twin instead (``sm_mlda_twin.nc``,
``data_kind = "synthetic twin"``, splits ``twin_*``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ingestion.models import Station
from products.data_kind import DataKind
from products.generators import sm_mlda
from products.generators.twins import sm_mlda as sm_mlda_twin
from products.lineage import (
    ProductOutput,
    RunError,
    Stages,
    ValidationRow,
    file_attributes,
    ingested_input,
    json_safe,
    metric_values,
    observations_frame,
    record_inputs,
    source_frames,
    stations_frame,
    twin_input,
)
from products.methods import uncertainty as unc
from products.methods.cf import write_netcdf
from products.models import GenerationRun

SATELLITE_NETWORKS = ("ASCAT", "ERS")
ISMN_SOURCE = "ISMN"
DEFAULTS = {
    "seed": 42,
    "n_splits": 10,
    "twin_pixels": 60,
    "twin_days": 1095,
    "twin_validation_fraction": 0.3,
    "n_estimators": 200,
    "gain": "tc",
    "memory_days": 3.0,
    "min_samples": 100,
    "tc_fallback": "exclude",
    "max_depth": 0.10,
    "satellite_points": 100,
    "real_gain": 0.5,
    "holdout_fraction": 0.2,
    "holdout_buffer_days": None,
    "collocation_km": 12.5,
    "triplet": "independent",
    "uncertainty_nominal": unc.NOMINAL,
    "real_tc_max_gap_days": 5,
    "real_tc_min_samples": 100,
}
"""Every parameter of a run. ``holdout_buffer_days`` None: three e-folding times of ``memory_days``
(:func:`products.generators.sm_mlda.memory_buffer_days`, 9 days for 3), resolved in the lineage;
``triplet``: the ML member of the TC triplet that sets the twin's nudging gain
(:data:`products.generators.twins.sm_mlda.TRIPLETS`); ``uncertainty_nominal``: the central interval whose
coverage is measured for the standard errors; ``real_tc_max_gap_days``, ``real_tc_min_samples``: the lagged
triple collocation of the real innovations (:func:`products.generators.sm_mlda.lagged_tc`)."""
REAL_SE_NAME = "ssm_nudged_standard_error"
"""The real file's uncertainty variable: the standard error of ``ssm_nudged``."""
WITHHELD_SPLITS = {"month": "real_withheld_months", "day": "real_withheld"}
ROW_KEYS = ("variable", "units", "split", "scope", "label")


def _parameters(run: GenerationRun) -> dict:
    """:data:`DEFAULTS` updated with the run's parameters (``sites`` is ignored), the buffer resolved; RunError
    for an unknown parameter or triplet."""
    unknown = set(run.parameters) - set(DEFAULTS) - {"sites"}
    if unknown:
        raise RunError(f"unknown sm_mlda parameter(s) {sorted(unknown)}: expected some of {sorted(DEFAULTS)}")
    params = {**DEFAULTS, **{k: v for k, v in run.parameters.items() if k != "sites"}}
    if params["triplet"] not in sm_mlda_twin.TRIPLETS:
        raise RunError(f"triplet must be one of {list(sm_mlda_twin.TRIPLETS)}, found {params['triplet']!r}")
    if params["holdout_buffer_days"] is None:
        params["holdout_buffer_days"] = sm_mlda.memory_buffer_days(float(params["memory_days"]))
    return params


STATISTICS_FITTED_ON = {
    "twin: TC error variances and TC-merged labels": "per pixel, on the collocated days of its three products "
    "(the labels are the training target; in-situ stations never enter)",
    "twin: LightGBM models (split twin_cv)": "each fold: the labelled training pixels of the other folds "
    "(grouped by pixel); the held-out fold's labels never fit it",
    "twin: final LightGBM model": "every labelled training pixel; validation pixels (split twin_insitu) excluded",
    "twin: LightGBM hyper-parameters": "fixed (DEFAULT_PARAMS, n_estimators), not tuned on any data",
    "twin: nudging gain, TC of (ML, passive, active)": "per pixel, on its own series; ML member (and the series "
    "nudged): the model of the fold that held the pixel out at training pixels, the final model elsewhere "
    "(triplet = independent); in-situ stations never enter",
    "twin: rescaling of the passive retrieval to the ML climatology": "per pixel, TC rescaling factor over "
    "the days with all three series (no in-situ data)",
    "twin: in-situ validation (split twin_insitu)": "nothing fitted: raw series against the stations",
    "real: climatological background (splits real_withheld_months, real_withheld)": "per grid point, "
    "leave-year-out day-of-year climatology of the retrievals assimilated only (withheld retrievals and "
    "buffer days excluded)",
    "real: nudging gain": "fixed (real_gain), not fitted",
    "twin: standard error of sm_mlda (sm_mlda_standard_error)": "TC error variances of the nudging triplet per "
    "pixel (its own satellite series; no in-situ value, no truth), propagated through the nudging; coverage "
    "measured at the validation pixels only (split twin_insitu)",
    "real: standard error of ssm_nudged (ssm_nudged_standard_error)": "lagged triple collocation of the "
    "innovation (retrieval minus background) on the assimilated retrievals only (withheld months and buffer "
    "days excluded), per grid point or pooled over the points, propagated through the nudging; coverage "
    "measured at the withheld retrievals only (split real_withheld_months)",
    "real: rescaling to the in-situ climatology (split real_insitu)": "per station and year, mean and standard "
    "deviation fitted on the station's other years (leave-year-out; a one-year record is not scored); no "
    "station is collocated in the sample data, so no such row is published",
}
"""Where each statistic, scaler, model and hyper-parameter of a run is fitted (the version's lineage), with
the default ``triplet`` (see :func:`statistics_fitted_on`)."""


def statistics_fitted_on(params: dict) -> dict:
    """:data:`STATISTICS_FITTED_ON` for a run's parameters (the ML member of the gain's triplet, a fixed gain)."""
    out = dict(STATISTICS_FITTED_ON)
    key = "twin: nudging gain, TC of (ML, passive, active)"
    if params["gain"] != "tc":
        out[key] = f"fixed gain {params['gain']}, not fitted"
    elif params["triplet"] == "dependent":
        out[key] = (
            "per pixel, on its own series; ML member (and the series nudged): the final model, which at the "
            "training pixels learnt from labels merged from the same passive and active retrievals (triplet = "
            "dependent: errors not independent, gain biased; see tc_gain_bias_twin)"
        )
    return out


def tc_gain_bias_twin(result) -> dict:
    """The TC nudging gain of the dependent and independent triplets against the oracle gain, on the twin.

    Medians over the twin's training pixels (where the final model learnt from labels merged from the
    passive and active retrievals it is collocated with), from
    :attr:`products.generators.twins.sm_mlda.TwinResult.tc_gain_bias`.

    Returns
    -------
    dict
        ``dependent`` and ``independent``: the median TC gain; ``oracle``: per triplet, the median gain
        that minimises the analysis error (from the truth); ``bias``: per triplet, the median of TC -
        oracle per pixel; ``err_var_ml_ratio``: TC / true ML error variance; ``rmse_vs_truth_ml_da``:
        the nudged series of each choice against the truth (m3 m-3); ``pixels``: how many; ``used``: the
        triplet the run used.
    """
    b = {t: result.tc_gain_bias[t]["training_pixels"] for t in sm_mlda_twin.TRIPLETS}
    return json_safe(
        {
            **{t: b[t]["tc_gain"] for t in b},
            "oracle": {t: b[t]["oracle_gain"] for t in b},
            "bias": {t: b[t]["gain_bias"] for t in b},
            "err_var_ml_ratio": {t: b[t]["err_var_ml_ratio"] for t in b},
            "rmse_vs_truth_ml_da": {t: b[t]["rmse_vs_truth_ml_da"] for t in b},
            "pixels": "twin training pixels",
            "n_pixels": b["independent"]["n_pixels"],
            "used": result.settings["triplet"],
        }
    )


def _rows(results: dict, **kwargs) -> list[ValidationRow]:
    """The rows of :func:`products.generators.sm_mlda.validation_rows` as :class:`ValidationRow`."""
    return [
        ValidationRow(*(row[k] for k in ROW_KEYS), {k: v for k, v in row.items() if k not in ROW_KEYS})
        for row in sm_mlda.validation_rows(results, **kwargs)
    ]


def _ismn(params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily ISMN surface soil moisture (:func:`products.generators.sm_mlda.ismn_daily`) and the ISMN stations.

    Raises
    ------
    RunError
        No ISMN station, or no daily surface value, in the database.
    """
    obs, stations, networks = source_frames(ISMN_SOURCE, variable_prefix="sm_")
    if not networks:
        raise RunError(
            "no ISMN stations in the database: run 'manage.py ingest ismn <folder>' "
            "(e.g. ../shared/data/ismn_testdata) first"
        )
    daily = sm_mlda.ismn_daily(obs, max_depth=float(params["max_depth"]))
    if daily.empty:
        raise RunError(
            f"no ISMN surface soil moisture (depth <= {params['max_depth']} m, flags G/U, >= 12 hourly "
            "values a day) in the database: run 'manage.py ingest ismn <folder>'"
        )
    return daily, stations


def _satellite(params: dict, ismn_stations: pd.DataFrame) -> dict | None:
    """The real ASCAT/ERS part: screening, climatological background, nudging scored on withheld retrievals.

    Returns
    -------
    dict or None
        None when no ASCAT/ERS station is ingested; else the networks, points, collocated pairs,
        nearest distance (km), the screened daily series (``wide``), ``background``, ``analysis``,
        the ``withheld`` scores, the number of candidate points and the ``uncertainty``
        (:func:`products.generators.sm_mlda.withheld_uncertainty` of the month check).

    Raises
    ------
    RunError
        No retrieval at the chosen points passed the screening.
    """
    networks = [n for n in SATELLITE_NETWORKS if Station.objects.filter(network=n).exists()]
    if not networks:
        return None
    points = pd.concat([stations_frame(network=n) for n in networks], ignore_index=True).dropna(subset=["lat", "lon"])
    pairs = sm_mlda.collocate(ismn_stations, points, max_km=float(params["collocation_km"]))
    nearest_km = float(sm_mlda.collocate(ismn_stations, points, max_km=np.inf)["distance_km"].min())
    rng = np.random.default_rng(int(params["seed"]))
    n = min(int(params["satellite_points"]), len(points))
    chosen = set(points["code"].to_numpy()[np.sort(rng.choice(len(points), n, replace=False))]) | set(pairs["point"])
    obs = pd.concat(
        [
            observations_frame(
                network=net,
                variables=["ssm", "frozen_prob", "snow_prob"],
                stations=sorted(chosen & set(points.loc[points["network"] == net, "code"])),
            )
            for net in networks
        ],
        ignore_index=True,
    )
    daily = sm_mlda.screen_retrievals(obs)
    if daily.empty:
        raise RunError(
            f"no {'/'.join(networks)} retrieval at the {len(chosen)} chosen grid points passed the frozen, "
            "snow and processing-flag screening"
        )
    wide = sm_mlda.to_wide(daily, "ssm")
    wide = wide[sm_mlda.climatology_background(wide).notna().any(axis=1)]  # points with >= 2 years of retrievals
    checks = {
        block: sm_mlda.withheld_check(
            wide,
            sm_mlda.climatology_background,  # fitted on the retrievals assimilated only
            block=block,
            gain=float(params["real_gain"]),
            memory_days=float(params["memory_days"]),
            fraction=float(params["holdout_fraction"]),
            seed=int(params["seed"]),
            buffer_days=int(params["holdout_buffer_days"]) if block == "month" else 0,
        )
        for block in WITHHELD_SPLITS
    }
    uncertainty = sm_mlda.withheld_uncertainty(
        checks["month"],
        wide,
        gain=float(params["real_gain"]),
        memory_days=float(params["memory_days"]),
        max_gap_days=int(params["real_tc_max_gap_days"]),
        min_samples=int(params["real_tc_min_samples"]),
        nominal=float(params["uncertainty_nominal"]),
        split=WITHHELD_SPLITS["month"],
    )
    return {
        "networks": networks,
        "points": points[points["code"].isin(wide.index)],
        "uncertainty": uncertainty,
        "pairs": pairs,
        "nearest_km": nearest_km,
        "wide": wide,
        "checks": checks,
        "background": checks["month"].background,
        "analysis": checks["month"].analysis,
        "n_candidates": len(points),
    }


def _real_dataset(
    insitu: pd.DataFrame, ismn_stations: pd.DataFrame, sat: dict | None, attrs: dict, params: dict | None = None
):
    """The real series (ISMN in situ; ASCAT/ERS screened, background, nudged and its standard error when
    ingested) as a CF timeSeries; ``params`` (the run's, default :data:`DEFAULTS`) describe the standard error."""
    params = {**DEFAULTS, **(params or {})}
    frames = [insitu[["station", "time", "insitu"]]]
    sites = [ismn_stations.rename(columns={"code": "station"})[["station", "lat", "lon"]].assign(site_type="in_situ")]
    variables = {
        "insitu": {
            **sm_mlda.SM_ATTRS,
            "long_name": "ISMN in-situ surface soil moisture, daily mean of good-quality hourly values (REAL)",
            "coverage_content_type": "physicalMeasurement",
        }
    }
    if sat is not None:
        long = []
        month = sat["checks"]["month"]
        for name, table in (
            ("ssm", sat["wide"]),
            ("ssm_background", sat["background"]),
            ("ssm_nudged", sat["analysis"]),
            (REAL_SE_NAME, sat["uncertainty"].standard_error),
            ("ssm_withheld", sat["wide"].where(month.withheld)),
        ):
            table = table.loc[sat["analysis"].index]
            s = table.stack(future_stack=True).rename(name)
            s.index.names = ["station", "time"]
            long.append(s)
        sat_frame = pd.concat(long, axis=1).reset_index()
        frames.append(sat_frame)
        pts = sat["points"].rename(columns={"code": "station"})
        tc_table = sat["uncertainty"].tc
        sites.append(
            pts[pts["station"].isin(sat["analysis"].index)][["station", "lat", "lon"]].assign(
                site_type="satellite_point",
                ssm_err_std_obs=lambda d: tc_table["err_std_obs"].reindex(d["station"]).to_numpy(),
                ssm_err_std_background=lambda d: tc_table["err_std_background"].reindex(d["station"]).to_numpy(),
            )
        )
        variables.update(
            {
                "ssm": {
                    **sm_mlda.SATURATION_ATTRS,
                    "long_name": "ASCAT/ERS surface soil moisture (degree of saturation), screened, daily mean (REAL)",
                    "coverage_content_type": "physicalMeasurement",
                },
                "ssm_background": {
                    **sm_mlda.SATURATION_ATTRS,
                    "long_name": "leave-year-out day-of-year climatology of the ssm retrievals assimilated "
                    "(withheld months and their buffer days excluded) (REAL)",
                },
                "ssm_nudged": {
                    **sm_mlda.SATURATION_ATTRS,
                    "long_name": "climatological background nudged toward the retrievals assimilated (not in a "
                    "withheld month or its buffer) (REAL)",
                },
                REAL_SE_NAME: {
                    **real_standard_error_attrs(sat, params),
                    "_FillValue": np.float32(np.nan),
                },
                "ssm_withheld": {
                    **sm_mlda.SATURATION_ATTRS,
                    "long_name": "ssm retrievals of the withheld months: scored (split real_withheld_months), "
                    "never assimilated nor used in the background (REAL)",
                    "coverage_content_type": "referenceInformation",
                },
            }
        )
    frame = pd.concat(frames, ignore_index=True)
    for name in variables:
        if name not in frame:
            frame[name] = np.nan
    stations = pd.concat(sites, ignore_index=True).drop_duplicates("station")
    frame = frame[frame["station"].isin(stations["station"])]
    station_variables = {"site_type": {"long_name": "in_situ or satellite_point"}}
    if sat is not None:
        station_variables.update(
            {
                f"ssm_err_std_{m}": {
                    **sm_mlda.SATURATION_ATTRS,
                    "standard_name": f"{sm_mlda.SATURATION_ATTRS['standard_name']} standard_error",
                    "long_name": f"error standard deviation of the {what} from lagged triple collocation of the "
                    "assimilated innovations (the point's own, or pooled over the points; satellite points only)",
                    "coverage_content_type": "qualityInformation",
                }
                for m, what in (("obs", "ssm retrieval"), ("background", "climatological background"))
            }
        )
    ds = sm_mlda.to_cf_timeseries(frame, variables, stations=stations, station_variables=station_variables, attrs=attrs)
    return unc.link_ancillary(ds, "ssm_nudged", REAL_SE_NAME) if sat is not None else ds


def real_standard_error_attrs(sat: dict, params: dict) -> dict:
    """CF attributes of :data:`REAL_SE_NAME`: how it is obtained (lagged TC, propagation) and its coverage.

    Parameters
    ----------
    sat : dict
        From :func:`_satellite`.
    params : dict
        The run's parameters.

    Returns
    -------
    dict
        From :func:`products.methods.uncertainty.standard_error_attributes` (method ``tc_nudging``).
    """
    u = sat["uncertainty"]
    tc_attrs, cov, ins = u.tc.attrs, u.coverage, u.coverage_assimilated
    sources = u.tc["source"].value_counts().to_dict()
    extra = (
        "No second independent product exists at the ERS/ASCAT points, so the triple is the innovation (retrieval "
        "minus background) of the assimilated retrievals with its own previous and next values within "
        f"{int(params['real_tc_max_gap_days'])} days (products.generators.sm_mlda.lagged_tc: background error "
        "first-order Markov, retrieval errors white); pooled over the points "
        f"({tc_attrs['n_pooled']} triples): retrieval error std {tc_attrs['err_std_obs_pooled']:.2f} %, background "
        f"error std {tc_attrs['err_std_background_pooled']:.2f} %; points with their own estimate: "
        f"{sources.get('station', 0)} of {len(u.tc)}. Fixed gain {float(params['real_gain']):g} (not the TC gain); "
        f"{sm_mlda.propagation_note(float(params['memory_days']))} {unc.calibration_comment(cov)}: against the "
        "withheld retrievals with the retrieval's TC error std added (obs_error_std); a retrieval is not the truth, "
        "and this tests the background and retrieval error variances together, not how TC splits them. On the "
        f"assimilated retrievals (in sample, not a calibration): {ins.measured:.1%} of {ins.n}"
    )
    return unc.standard_error_attributes(
        {**sm_mlda.SATURATION_ATTRS},
        method="tc_nudging",
        long_name="standard error of the nudged ASCAT/ERS surface soil moisture (TC error standard deviations "
        "propagated through the nudging) (REAL)",
        extra=extra,
    )


def sm_mlda_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """Real ISMN/ASCAT pieces and the synthetic twin of the SM ML-DA chain; see the module docstring.

    Raises
    ------
    RunError
        Unknown parameters; no ISMN data (names the ingest command); no ASCAT/ERS retrieval passed the screening.
    """
    params = _parameters(run)
    stages = Stages(run)
    base_attrs = file_attributes(run)

    with stages("real_inputs"):
        insitu, ismn_stations = _ismn(params)
        sat = _satellite(params, ismn_stations)
        inputs = [ingested_input("ISMN in-situ soil moisture (validation stations)", "ismn")]
        if sat is not None:
            inputs.append(ingested_input("ASCAT/ERS surface soil moisture (retrievals to assimilate)", "ascat"))
        inputs.append(
            twin_input(
                "products.generators.twins.sm_mlda.make_twin",
                {k: params[k] for k in ("seed", "twin_pixels", "twin_days", "twin_validation_fraction")},
            )
        )
        record_inputs(run, inputs)

    with stages("twin_chain"):
        twin = sm_mlda_twin.make_twin(
            int(params["twin_pixels"]),
            int(params["twin_days"]),
            seed=int(params["seed"]),
            validation_fraction=float(params["twin_validation_fraction"]),
        )
        gain = params["gain"] if params["gain"] == "tc" else float(params["gain"])
        result = sm_mlda_twin.run_twin(
            twin,
            n_splits=int(params["n_splits"]),
            seed=int(params["seed"]),
            params={"n_estimators": int(params["n_estimators"])},
            gain=gain,
            memory_days=float(params["memory_days"]),
            min_samples=int(params["min_samples"]),
            tc_fallback=str(params["tc_fallback"]),
            triplet=str(params["triplet"]),
            nominal=float(params["uncertainty_nominal"]),
        )

    with stages("write"):
        files = {}
        twin_name = "sm_mlda_twin.nc"
        write_netcdf(sm_mlda_twin.twin_dataset(result, attrs=base_attrs), workdir / twin_name)
        files[twin_name] = (
            "SYNTHETIC twin experiment, CF-1.8 timeSeries (DSG): synthetic truth, in-situ, three products, "
            "TC labels, LightGBM and ML-DA (nudged) soil moisture at twin pixels"
        )
        real_attrs = {
            **base_attrs,
            "data_kind": DataKind.REAL,
            "title": "Soil moisture ML-DA: real inputs and the steps the sample data allow",
            "comment": "REAL data. Ran on real data: ISMN daily in-situ series; ASCAT/ERS screening, leave-year-out "
            "climatological background, nudging toward the real retrievals scored on withheld real "
            "retrievals; satellite-station collocation. Not possible on the sample data: TC labels (no "
            "triple of collocated products), the LightGBM model (no forcing series at the SM points), "
            "hence no real ML-DA series; those ran on the synthetic twin (sm_mlda_twin.nc).",
            "ascat_ingested": "yes" if sat else "no",
        }
        real_name = "sm_mlda_real.nc"
        write_netcdf(_real_dataset(insitu, ismn_stations, sat, real_attrs, params), workdir / real_name)
        files[real_name] = "REAL data, CF-1.8 timeSeries (DSG): ISMN daily in-situ soil moisture" + (
            "; ASCAT/ERS screened retrievals, climatological background and nudged series" if sat else ""
        )

    validation = _rows(result.validation, split="twin_insitu", kind=DataKind.SYNTHETIC, units="m3 m-3")
    validation += _rows(result.cv, split="twin_cv", kind=DataKind.SYNTHETIC, units="m3 m-3")
    tab, ok = result.labels.table, (result.labels.table["rule"] == "tc").to_numpy()
    summary = {
        "data_kind": {
            "twin": DataKind.SYNTHETIC,
            "ismn": DataKind.REAL,
            "ascat": DataKind.REAL if sat else "not ingested",
        },
        "twin": {
            "pixels": int(len(twin.pixels)),
            "days": int(len(twin.times)),
            "validation_stations": int(len(result.validation_pixels)),
            "medians": {
                k: metric_values({m: v["median"][m] for m in ("n_stations", "r", "ubrmse")})
                for k, v in result.validation.items()
            },
            "tc_rule_counts": {str(k): int(v) for k, v in tab["rule"].value_counts().items()},
            "tc_err_std_median": metric_values({p: tab.loc[ok, f"err_std_{p}"].median() for p in sm_mlda.PRODUCTS}),
            "known_err_std_median": metric_values(
                {p: pd.Series(twin.known_err_std[p][ok]).median() for p in sm_mlda.PRODUCTS}
            ),
            "gain_median": json_safe(result.gain["gain"].median()),
            "oracle_gain_median": json_safe(result.gain["oracle_gain"].median()),
            "triplet": result.settings["triplet"],
            "tc_gain_bias": json_safe(result.tc_gain_bias),
            "rmse_vs_truth": metric_values(result.truth_scores),
        },
        "real": {"ismn_stations": int(insitu["station"].nunique()), "ismn_days": int(len(insitu))},
        "seed": sm_mlda.SEED_FIGURES,
        "tc_gain_bias_twin": tc_gain_bias_twin(result),
    }
    if sat is not None:
        for block, split in WITHHELD_SPLITS.items():
            validation += _rows(
                sat["checks"][block].results, split=split, kind=DataKind.REAL, units="%", variable_prefix="ssm"
            )
        collocated = sm_mlda.validate_collocated(
            sat["pairs"], insitu, {"ascat": sat["wide"], "ascat_nudged": sat["analysis"]}
        )
        if collocated:
            validation += _rows(collocated, split="real_insitu", kind=DataKind.REAL, units="m3 m-3")
        summary["real"].update(
            {
                "satellite_networks": sat["networks"],
                "satellite_points_available": int(sat["n_candidates"]),
                "satellite_points_used": int(len(sat["analysis"])),
                "withheld_medians": {  # per split: real_withheld_months (headline), real_withheld (random days)
                    split: {
                        k: metric_values({m: v["median"][m] for m in ("n_stations", "r", "ubrmse")})
                        for k, v in sat["checks"][block].results.items()
                    }
                    for block, split in WITHHELD_SPLITS.items()
                },
                "withheld_retrievals": {
                    split: {
                        "withheld": int(sat["checks"][block].withheld.to_numpy().sum()),
                        "buffer": int(sat["checks"][block].buffer.to_numpy().sum()),
                        "assimilated": int(sat["checks"][block].assimilated.to_numpy().sum()),
                        "buffer_days": sat["checks"][block].buffer_days,
                    }
                    for block, split in WITHHELD_SPLITS.items()
                },
                "collocated_stations": int(len(sat["pairs"])),
                "nearest_station_point_km": json_safe(sat["nearest_km"]),
            }
        )
    else:
        summary["real"]["satellite"] = (
            "ASCAT/ERS not ingested: run 'manage.py ingest ascat <folder>' for the real nudging"
        )
    u = result.uncertainty
    summary["twin"]["uncertainty"] = {
        "coverage_insitu": u["coverage_insitu"].as_dict(),
        "coverage_truth_own_scale": u["coverage_truth_own_scale"].as_dict(),
        "err_std_ml_median": json_safe(float(np.median(u["err_std_ml"]))),
        "err_std_obs_median": json_safe(float(np.median(u["err_std_obs"]))),
        "pixels_from_tc": int(u["from_tc"].sum()),
    }
    summary["uncertainty"] = [
        unc.summary_entry(
            file=twin_name,
            variable=sm_mlda_twin.SE_NAME,
            estimate="sm_mlda",
            kind=unc.STANDARD_ERROR,
            method="tc_nudging",
            calibration=u["coverage_truth"],
        )
    ]
    if sat is not None:
        su = sat["uncertainty"]
        summary["real"]["uncertainty"] = {
            "coverage_assimilated_in_sample": su.coverage_assimilated.as_dict(),
            "lagged_tc": json_safe(
                {
                    **su.tc.attrs,
                    "max_gap_days": int(params["real_tc_max_gap_days"]),
                    "sources": {str(k): int(v) for k, v in su.tc["source"].value_counts().items()},
                }
            ),
        }
        summary["uncertainty"].append(
            unc.summary_entry(
                file=real_name,
                variable=REAL_SE_NAME,
                estimate="ssm_nudged",
                kind=unc.STANDARD_ERROR,
                method="tc_nudging",
                calibration=su.coverage,
            )
        )
    med = result.validation["ml_da"]["median"]
    return ProductOutput(
        files=files,
        validation=validation,
        summary=summary,
        notes=(
            f"Soil moisture ML-DA. SYNTHETIC twin ({len(twin.pixels)} pixels): median R {med['r']:.3f}, ubRMSE "
            f"{med['ubrmse']:.4f} m3 m-3 over {med['n_stations']} held-out twin stations (a check of the method on "
            "made-up data, not comparable with published figures). REAL: ISMN daily series"
            + (", ASCAT/ERS nudging scored on whole withheld months" if sat else "")
            + "; no real ML-DA series (no collocated product triple or forcing at the stations). Standard error "
            + f"(TC through the nudging): coverage of the {float(params['uncertainty_nominal']):.0%} interval "
            + "; ".join(
                f"{e['file']} {e['calibration']['measured']:.1%} ({e['calibration']['split']}, n {e['calibration']['n']})"
                for e in summary["uncertainty"]
                if e["calibration"] and e["calibration"]["measured"] is not None
            )
            + "."
        ),
        parameters={**params, "lightgbm": result.fit.params},
        statistics_fitted_on=statistics_fitted_on(params),
    )
