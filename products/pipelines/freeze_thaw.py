"""The freeze/thaw pipeline: a GLDAS proxy experiment on the real sample day, and a synthetic twin.

The seed (TPDC f52826e1-...) learns SMOS freeze/thaw from AMSR-E/MWRI brightness temperatures,
terrain, soil properties and GLDAS. The sample data hold **no brightness temperature and no SMOS or
SMAP FT file** (readers for both exist: :mod:`ingestion.readers.amsr2`,
:mod:`ingestion.readers.freeze_thaw`), so what runs here is labelled:

* **proxy experiment** (``data_kind = "proxy experiment"``, real GLDAS numbers, proxy roles) -- on
  GLDAS-1 Noah 0.25 degree of 2015-01-01 (four 6-hourly GRIB files, soil temperature of four
  layers only): reference = daily mean 0-10 cm soil temperature < 273.15 K (frozen); predictors =
  daily means of the 10-40, 40-100 and 100-200 cm soil temperature, the diurnal range of the
  10-40 cm layer and latitude. The reference layer itself is never a predictor
  (:func:`products.generators.freeze_thaw.check_no_leakage`). No elevation-like field can be derived
  from the sample files (no surface pressure, geopotential or DEM on that day), so no terrain
  predictor other than latitude is used. An ablation (``deep_only``: 100-200 cm temperature and
  latitude) shows how much of the skill comes from the layer next to the reference. Regions: the
  Tibetan Plateau box (73-105 E, 25-40 N) and the globe (GLDAS land, 60 S-90 N). Split 70/15/15 by
  spatial blocks of pixels whose edge is sized from the data: the largest practical range of the
  empirical variograms of the predictors (:func:`products.generators.freeze_thaw.variogram_block_split`;
  about 8 degrees on the plateau and 63 degrees globally on 2015-01-01, where the fixed 2 and 5
  degree blocks used before were far inside the range); the reference labels play no part in the
  block size. Because so few such blocks fit in a region, every block is also held out once in a
  5-fold block cross-validation (``block_cv``: leaf size chosen on another fold's blocks, the
  held-out predictions pooled), and the former fixed blocks are scored beside (``fixed_blocks``) to
  show the inflation. A split by year is impossible: the sample data hold soil temperature for one
  day only (2015-01-01; the 2016-01-01 GLDAS-2.1 files hold soil moisture only). Days are UTC
  calendar days (:data:`products.generators.freeze_thaw.DAY_DEFINITION`).

  **What the proxy's accuracy measures**: the reference and the predictors come from one GLDAS run,
  so the accuracy measures the pipeline (the classifier, the split, the files), not a freeze/thaw
  skill (:data:`products.generators.freeze_thaw.ACCURACY_MEASURES`).
* **synthetic twin** (``data_kind = "synthetic twin"``) -- frozen where a synthetic temperature
  field is below 0 degC, noisy brightness-like, elevation and latitude predictors plus a pure-noise
  one: the chain must beat the known single-channel rule and ignore the noise.

Outputs: one daily state grid per experiment (``ft_state`` uint8 0 thawed / 1 frozen / 255 fill,
CF flags, with ``ft_reference`` and the ``split`` of each pixel, and ``probability_frozen``: the
selected model's probability of the class frozen, float32 in [0, 1], named in ``ft_state``'s
``ancillary_variables``; its calibration -- Brier score and expected calibration error of the
out-of-fold probabilities of the block cross-validation, ``split = "block_cv"`` -- is in the
variable's comment and in ``summary["uncertainty"]``, issue 17), ``freeze_thaw_metrics.csv`` (one
row per experiment and set: confusion matrix, overall accuracy, Cohen's kappa, per-class recall) and
``freeze_thaw_metrics.json`` (the same with model selection and feature importances). Classification
metrics do not fit the KGE-style ValidationResult columns, so no ValidationResult rows are written;
the figures are in the version's summary (lineage) and these files.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from django.conf import settings

from ingestion.readers import gldas
from products.data_kind import DataKind
from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin
from products.lineage import (
    ProductOutput,
    RunError,
    Stages,
    file_attributes,
    file_input,
    json_safe,
    record_inputs,
    twin_input,
)
from products.methods import cf
from products.methods import uncertainty as unc
from products.models import GenerationRun
from products.pipelines.compute import grid_compute

GLDAS_DAY = "gldas_testdata/img2ts_test/grib/2015/001"
REFERENCE_FIELD = "SoilTMP0_10cm_inst"
REGIONS = {"tibetan_plateau": (73.0, 25.0, 105.0, 40.0), "global": None}
FEATURE_SETS = {
    "gldas_soil": ["t_soil_10_40cm", "t_soil_40_100cm", "t_soil_100_200cm", "t_soil_10_40cm_range", "lat"],
    "deep_only": ["t_soil_100_200cm", "lat"],
}
FIXED_BLOCK_DEG = {"tibetan_plateau": 2.0, "global": 5.0, "twin": 2.0}
"""The fixed block edges used before issue 16, scored beside the data-sized blocks to show the inflation."""
DEFAULTS = {
    "seed": 42,
    "regions": list(REGIONS),
    "block_deg": "variogram",
    "variogram_sill_fraction": 0.95,
    "variogram_max_points": 3000,
    "cv_folds": 5,
    "fixed_block_deg": FIXED_BLOCK_DEG,
    "n_estimators": 100,
    "min_samples_leaf": [1, 5, 20],
    "max_train_samples": 60000,
    "n_jobs": 1,
    "ablation": True,
    "twin": True,
    "twin_shape": [2, 60, 128],
    "twin_tb_noise_k": 3.0,
    "gldas_folder": GLDAS_DAY,
    "reliability_bins": 10,
}


def _parameters(run: GenerationRun) -> dict:
    """:data:`DEFAULTS` updated with the run's parameters; RunError for an unknown parameter or region."""
    unknown = set(run.parameters) - set(DEFAULTS)
    if unknown:
        raise RunError(f"unknown freeze_thaw parameter(s) {sorted(unknown)}: expected some of {sorted(DEFAULTS)}")
    params = {**DEFAULTS, **run.parameters}
    bad = [r for r in params["regions"] if r not in REGIONS]
    if bad:
        raise RunError(f"unknown region(s) {bad}: expected some of {sorted(REGIONS)}")
    if not (params["block_deg"] == "variogram" or isinstance(params["block_deg"], int | float | dict)):
        raise RunError(f"block_deg must be 'variogram', a number or a dict per region, found {params['block_deg']!r}")
    bins = params["reliability_bins"]
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise RunError(f"reliability_bins must be a positive integer, found {bins!r}")
    return params


def _fixed_block(params: dict, name: str) -> float | None:
    """The block edge the run fixes for ``name`` (a region or ``twin``), or None: sized from the variogram."""
    value = params["block_deg"]
    if isinstance(value, dict):
        value = value.get(name, "variogram")
    return None if value == "variogram" else float(value)


def blocks_for(data: ft.Samples, fields: list[str], params: dict, name: str) -> tuple:
    """The 70/15/15 block split of ``data`` and what sized it (see :func:`ft.variogram_block_split`).

    The variogram is always computed (its range is recorded); a block edge fixed by the run's
    ``block_deg`` replaces the data-sized one, and ``info["basis"]`` says so.
    """
    seed = int(params["seed"])
    split, info = ft.variogram_block_split(
        data,
        fields,
        fraction=float(params["variogram_sill_fraction"]),
        max_points=int(params["variogram_max_points"]),
        seed=seed,
    )
    fixed = _fixed_block(params, name)
    if fixed is not None:
        split = ft.block_split(data.lat, data.lon, fixed, seed=seed)
        ids = ft.block_ids(data.lat, data.lon, fixed)
        info = {
            **info,
            "block_deg": fixed,
            "block_below_range": bool(fixed < info["range_deg"]),
            "n_blocks": {s: int(len(set(ids[split == k]))) for k, s in enumerate(ft.SETS)},
            "basis": f"block edge fixed by the run's block_deg ({fixed:g} degrees); variogram range recorded only",
        }
    return split, info


def _cv_brief(cv: ft.BlockCV, block: float) -> dict:
    keys = ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen", "confusion_matrix")
    return {"block_deg": block, "test_pooled": {k: cv.metrics[k] for k in keys}, "folds": cv.fold_metrics}


def gldas_proxy_cube(files: list[Path]):
    """Predictors and reference of the proxy experiment from GLDAS GRIB files of one day.

    Parameters
    ----------
    files : list of pathlib.Path
        GLDAS Noah 0.25 degree files of one UTC day (read with :func:`ingestion.readers.gldas.open_grid`).

    Returns
    -------
    predictors : xarray.Dataset
        ``(time=1, lat, lon)`` float32: ``t_soil_10_40cm``, ``t_soil_40_100cm``, ``t_soil_100_200cm``
        (daily means, K) and ``t_soil_10_40cm_range`` (max - min of the day's steps, K).
    reference : numpy.ndarray
        uint8 (1, lat, lon): daily mean 0-10 cm soil temperature < 273.15 K (1 frozen), 255 where
        missing (ocean, Antarctica).
    n_steps : int
        Time steps averaged (fewest of any day).

    Days are UTC calendar days (:data:`products.generators.freeze_thaw.DAY_DEFINITION`); files of
    several days give one step per day.

    Raises
    ------
    RunError
        A soil temperature layer is missing.
    """
    cube = xr.concat([gldas.open_grid(f) for f in files], dim="time").sortby("time")
    layers = {
        "t_soil_10_40cm": "SoilTMP10_40cm_inst",
        "t_soil_40_100cm": "SoilTMP40_100cm_inst",
        "t_soil_100_200cm": "SoilTMP100_200cm_inst",
    }
    missing = [v for v in [REFERENCE_FIELD, *layers.values()] if v not in cube]
    if missing:
        raise RunError(f"GLDAS files without {missing}: expected the four soil temperature layers")
    means = ft.daily_mean(cube, [REFERENCE_FIELD, *layers.values()])
    day = cube.groupby(cube["time"].dt.floor("D").rename("day"))
    rng = (day.max(skipna=False) - day.min(skipna=False)).rename(day="time")["SoilTMP10_40cm_inst"]
    predictors = xr.Dataset(
        {
            new: means[old].assign_attrs(long_name=f"GLDAS {means[old].attrs.get('long_name')}, daily mean")
            for new, old in layers.items()
        }
    )
    predictors["t_soil_10_40cm_range"] = rng.astype("float32").assign_attrs(
        units="K", long_name="GLDAS soil temperature 10-40 cm, max - min of the day's steps"
    )
    reference = ft.reference_state(means[REFERENCE_FIELD].values)
    return predictors, reference, int(means[REFERENCE_FIELD].attrs["n_steps"])


def _box(ds, bbox):
    """``ds`` within ``bbox`` (lon0, lat0, lon1, lat1; None: all of it)."""
    if bbox is None:
        return ds
    lon0, lat0, lon1, lat1 = bbox
    return ds.sel(lat=slice(lat0, lat1), lon=slice(lon0, lon1))


def _folders(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def freeze_thaw_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """GLDAS proxy experiment (Tibetan Plateau box and globe) and synthetic twin; see the module docstring.

    Parameters (``run.parameters``, all optional; :data:`DEFAULTS`): ``regions`` (subset of
    ``tibetan_plateau``, ``global``), ``block_deg`` (``"variogram"``: sized from the data; or a number,
    or a dict per region / ``twin``), ``variogram_sill_fraction``, ``variogram_max_points``,
    ``cv_folds`` (block cross-validation; 0: none), ``fixed_block_deg`` (the former fixed blocks scored
    beside, per region / ``twin``; empty: none), ``n_estimators``, ``min_samples_leaf`` (candidates
    chosen on the validation set), ``max_train_samples``, ``n_jobs``, ``seed``, ``ablation`` (also fit
    the ``deep_only`` feature set), ``twin``, ``twin_shape`` ([days, lat, lon]), ``twin_tb_noise_k``,
    ``gldas_folder`` (one folder of one day, or a list of them, relative to ``SHARED_DATA_DIR``),
    ``reliability_bins`` (equal-width probability bins of the expected calibration error of
    ``probability_frozen``).

    Raises
    ------
    RunError
        Unknown parameters or regions; no GLDAS file in a folder; a block split that cannot be made.
    """
    params = _parameters(run)
    stages = Stages(run)
    seed = int(params["seed"])
    fit_kw = {
        "n_estimators": int(params["n_estimators"]),
        "min_samples_leaf": [int(v) for v in params["min_samples_leaf"]],
        "seed": seed,
        "n_jobs": int(params["n_jobs"]),
        "max_train_samples": params["max_train_samples"],
    }
    n_folds = int(params["cv_folds"])
    fixed_blocks = dict(params["fixed_block_deg"] or {})
    base_attrs = {**file_attributes(run), "day_definition": ft.DAY_DEFINITION}

    with stages("read_gldas"):
        files = []
        for rel in _folders(params["gldas_folder"]):
            folder = Path(settings.SHARED_DATA_DIR) / rel
            found = sorted([*folder.glob("GLDAS_NOAH025*.grb"), *folder.glob("GLDAS_NOAH025*.nc4")])
            if not found:
                raise RunError(f"no GLDAS file in {folder} (SHARED_DATA_DIR={settings.SHARED_DATA_DIR})")
            files += found
        inputs = [
            file_input("GLDAS Noah 0.25 degree soil temperature (proxy reference 0-10 cm; predictors 10-200 cm)", f)
            for f in files
        ]
        if params["twin"]:
            inputs.append(
                twin_input(
                    "products.generators.twins.freeze_thaw.make_twin",
                    {"shape": params["twin_shape"], "tb_noise_k": params["twin_tb_noise_k"], "seed": seed},
                )
            )
        record_inputs(run, inputs)
        predictors, reference, n_steps = gldas_proxy_cube(files)
        days = [str(d)[:10] for d in predictors["time"].values]

    def cv_of(data, block):
        """(the summary's brief or None, the BlockCV or None, why there is none)."""
        if not n_folds:
            return None, None, "the run set cv_folds = 0, so no block cross-validation gave held-out probabilities"
        try:
            cv = ft.block_cv(data, block, n_folds=n_folds, **fit_kw)
        except ValueError as exc:  # fewer blocks than folds, or a fold with one class in training
            return {"block_deg": block, "not_run": str(exc)}, None, f"the block cross-validation could not run: {exc}"
        return _cv_brief(cv, block), cv, ""

    def probability_of(file, data, split, res, cv, why, block):
        """The probability's calibration figures (:func:`_calibration`) and the comment sentence; appends the
        file's ``summary["uncertainty"]`` entry (headline: out-of-fold probabilities of the block CV)."""
        figures, headline = _calibration(data, split, res, cv, block, bins)
        entry = unc.summary_entry(
            file=file,
            variable=ft.PROBABILITY_NAME,
            estimate=ft.STATE_NAME,
            kind=unc.PROBABILITY,
            method="class_probability",
            calibration=headline,
            not_calibrated_reason=why if headline is None else "",
        )
        uncertainty.append(entry)
        return figures, unc.calibration_comment(headline, why)

    def fixed_of(data, key):
        block = fixed_blocks.get(key)
        if block is None:
            return None
        split = ft.block_split(data.lat, data.lon, float(block), seed=seed)
        return {"block_deg": float(block), **brief(ft.fit_select(data, split, **fit_kw))}

    results: dict[str, dict] = {DataKind.PROXY: {}, DataKind.SYNTHETIC: {}}
    block_cv: dict[str, dict] = {}
    fixed: dict[str, dict] = {}
    blocks: dict[str, dict] = {}
    bins = int(params["reliability_bins"])
    uncertainty: list[dict] = []
    calibration: dict[str, dict] = {}
    out_files: dict[str, str] = {}
    grids: dict[str, dict] = {}
    for region in params["regions"]:
        with stages(f"proxy_{region}"):
            bbox = REGIONS[region]
            sub = _box(predictors, bbox)
            ref = _box(predictors.assign(ref=(("time", "lat", "lon"), reference)), bbox)["ref"].values.astype("u1")
            main = None
            for fs_name, features in FEATURE_SETS.items():
                if fs_name != "gldas_soil" and not params["ablation"]:
                    continue
                data = ft.samples(sub, ref, features, reference_source=REFERENCE_FIELD)
                if fs_name == "gldas_soil":
                    try:
                        split, info = blocks_for(data, [f for f in features if f != "lat"], params, region)
                    except ValueError as exc:
                        raise RunError(f"{region}: {exc}") from exc
                    blocks[region] = info
                else:  # the ablation on the same blocks
                    split = ft.block_split(data.lat, data.lon, blocks[region]["block_deg"], seed=seed)
                res = ft.fit_select(data, split, **fit_kw)
                name = f"{region}:{fs_name}"
                results[DataKind.PROXY][name] = res
                cv_brief, cv, why = cv_of(data, blocks[region]["block_deg"])
                if cv_brief is not None:
                    block_cv[name] = cv_brief
                if fs_name == "gldas_soil":
                    main = (data, split, res, features, cv, why)
                    comparison = fixed_of(data, region)
                    if comparison is not None:
                        fixed[name] = comparison
            data, split, res, features, cv, why = main
            info = blocks[region]
            name = f"freeze_thaw_proxy_{region}.nc"
            calibration[region], calibration_text = probability_of(name, data, split, res, cv, why, info["block_deg"])
            shape = tuple(sub.sizes[d] for d in ("time", "lat", "lon"))
            grids[region] = ft.write_state_grid(
                workdir / name,
                predictors=sub,
                features=features,
                predict=res.model.predict,
                probability=functools.partial(ft.class_probability, res.model),
                probability_comment=calibration_text,
                **grid_compute(),
                data_kind=DataKind.PROXY,
                extra={
                    "ft_reference": (
                        ref,
                        {
                            **ft.STATE_ATTRS,
                            "long_name": "reference: GLDAS 0-10 cm soil temperature (daily mean, UTC day) < 273.15 K",
                        },
                    ),
                    "split": (ft.grid_of(data, split, shape, ft.SPLIT_FILL, "i1"), _split_attrs(info)),
                },
                attrs={
                    **base_attrs,
                    "title": f"Freeze/thaw state, PROXY EXPERIMENT ({region.replace('_', ' ')}), {', '.join(days)}",
                    "comment": "PROXY EXPERIMENT, not the seed's product: no brightness temperature and no SMOS/SMAP "
                    "FT file exist in the sample data. Reference = GLDAS-1 Noah 0-10 cm soil temperature "
                    "(daily mean of 6-hourly steps, UTC day) < 273.15 K; predictors = GLDAS deeper soil "
                    "temperatures and latitude (no elevation-like field is derivable). Split 70/15/15 by "
                    f"{info['block_deg']:g}-degree spatial blocks of pixels, the edge sized from the predictors' "
                    f"variogram range ({info['range_deg']:.1f} degrees); one day: no split by year. "
                    + ft.ACCURACY_MEASURES
                    + " "
                    + _probability_sentence(calibration_text),
                    "accuracy_measures": ft.ACCURACY_MEASURES,
                    "block_deg": info["block_deg"],
                    "variogram_range_deg": info["variogram_range_deg"],
                    "block_basis": info["basis"],
                    "region_bbox": json.dumps(bbox) if bbox else "global GLDAS land",
                    **cf.soil_layer_attributes(0.0, 0.1),  # the state of the 0-10 cm layer the reference defines
                    "model_parameters": res.params,
                    "metrics": {s: res.metrics[s] for s in ft.SETS},
                },
            )
            out_files[name] = (
                f"PROXY EXPERIMENT ({region}): daily (UTC day) freeze/thaw state grid of {', '.join(days)} (uint8, "
                "0 thawed, 1 frozen) predicted by Extremely Randomized Trees from GLDAS deeper soil temperatures and "
                "latitude, with the GLDAS 0-10 cm reference and each pixel's train/validation/test set; its accuracy "
                "measures the pipeline, not a freeze/thaw skill"
            )

    twin_info = None
    if params["twin"]:
        with stages("twin"):
            n_days, n_lat, n_lon = (int(v) for v in params["twin_shape"])
            twin = ft_twin.make_twin(
                n_lat=n_lat, n_lon=n_lon, n_days=n_days, tb_noise_k=float(params["twin_tb_noise_k"]), seed=seed
            )
            data = ft.samples(twin.predictors, twin.truth, twin.features)
            try:
                split, twin_info = blocks_for(data, [f for f in twin.features if f != "lat"], params, "twin")
            except ValueError as exc:
                raise RunError(f"twin: {exc}") from exc
            res = ft.fit_select(data, split, **fit_kw)
            results[DataKind.SYNTHETIC]["twin"] = res
            cv_brief, cv, why = cv_of(data, twin_info["block_deg"])
            if cv_brief is not None:
                block_cv["twin"] = cv_brief
            comparison = fixed_of(data, "twin")
            if comparison is not None:
                fixed["twin"] = comparison
            shape = twin.truth.shape
            test_mask = ft.grid_of(data, split == 2, shape, False, bool)
            baseline = ft_twin.twin_baseline_accuracy(twin, test_mask)
            name = "freeze_thaw_twin.nc"
            calibration["twin"], calibration_text = probability_of(
                name, data, split, res, cv, why, twin_info["block_deg"]
            )
            grids["twin"] = ft.write_state_grid(
                workdir / name,
                predictors=twin.predictors,
                features=twin.features,
                predict=res.model.predict,
                probability=functools.partial(ft.class_probability, res.model),
                probability_comment=calibration_text,
                **grid_compute(),
                data_kind=DataKind.SYNTHETIC,
                extra={
                    "ft_reference": (twin.truth, {**ft.STATE_ATTRS, "long_name": "synthetic truth: T < 0 degC"}),
                    "split": (ft.grid_of(data, split, shape, ft.SPLIT_FILL, "i1"), _split_attrs(twin_info)),
                },
                attrs={
                    **base_attrs,
                    "title": "Freeze/thaw state, SYNTHETIC TWIN",
                    "comment": "SYNTHETIC TWIN with a known answer: frozen where a synthetic temperature field is "
                    "below 0 degC; predictors a noisy brightness-like channel, noisy elevation, latitude "
                    f"and pure noise. Split 70/15/15 by {twin_info['block_deg']:g}-degree spatial blocks sized from "
                    "the predictors' variogram range. " + _probability_sentence(calibration_text),
                    "test_baseline_overall_accuracy": baseline,
                    "block_deg": twin_info["block_deg"],
                    "variogram_range_deg": twin_info["variogram_range_deg"],
                    "block_basis": twin_info["basis"],
                },
            )
            out_files[name] = "SYNTHETIC TWIN: state grid, synthetic truth and split (known answer)"

    with stages("metrics"):
        block_of = {f"{r}:{fs}": blocks[r]["block_deg"] for r in blocks for fs in FEATURE_SETS}
        if twin_info:
            block_of["twin"] = twin_info["block_deg"]
        extra_rows = [
            {
                "experiment": name,
                "data_kind": DataKind.SYNTHETIC if name == "twin" else DataKind.PROXY,
                "block_deg": cv["block_deg"],
                "set": "test_block_cv",
                **_row(cv["test_pooled"]),
            }
            for name, cv in block_cv.items()
            if "test_pooled" in cv
        ] + [
            {
                "experiment": f"{name}:fixed_blocks",
                "data_kind": DataKind.SYNTHETIC if name == "twin" else DataKind.PROXY,
                "block_deg": f["block_deg"],
                "set": s,
                **_row(f[s]),
            }
            for name, f in fixed.items()
            for s in ft.SETS
        ]
        table = pd.concat(
            [ft.metrics_table(r, data_kind=kind, block_deg=block_of) for kind, r in results.items() if r]
            + [pd.DataFrame(extra_rows)],
            ignore_index=True,
        )
        table.to_csv(workdir / "freeze_thaw_metrics.csv", index=False)
        out_files["freeze_thaw_metrics.csv"] = (
            "classification metrics per experiment and set (proxy experiment and "
            "synthetic twin; blocks sized from the variogram range): confusion matrix, overall accuracy, kappa, "
            "recall; the seed's published accuracy is not comparable and is not in this table"
        )
        detail = {
            kind: {
                name: {
                    "metrics": r.metrics,
                    "selection": r.selection,
                    "importances": r.importances,
                    "params": r.params,
                    "n_train_fitted": r.n_train_fitted,
                    "features": r.features,
                    "blocks": blocks.get(name.split(":")[0]) if kind == DataKind.PROXY else twin_info,
                    "block_cv": block_cv.get(name),
                    "fixed_blocks": fixed.get(name),
                }
                for name, r in rs.items()
            }
            for kind, rs in results.items()
        }
        if params["twin"]:
            detail[DataKind.SYNTHETIC]["twin"]["test_baseline_overall_accuracy"] = baseline
        (workdir / "freeze_thaw_metrics.json").write_text(
            json.dumps(
                json_safe(
                    {
                        "seed": ft.SEED_FIGURES,
                        "accuracy_measures": ft.ACCURACY_MEASURES,
                        "day_definition": ft.DAY_DEFINITION,
                        "probability_calibration": calibration,
                        **detail,
                    }
                ),
                indent=1,
            )
        )
        out_files["freeze_thaw_metrics.json"] = (
            "the same metrics with model selection, feature importances, the variogram-sized blocks, the block "
            "cross-validation and the former fixed blocks (JSON)"
        )

    summary = {
        "data_kind": {"proxy": DataKind.PROXY, "twin": DataKind.SYNTHETIC if params["twin"] else "not run"},
        "seed": ft.SEED_FIGURES,
        "accuracy_measures": ft.ACCURACY_MEASURES,
        "day_definition": ft.DAY_DEFINITION,
        "proxy": {name: brief(r) for name, r in results[DataKind.PROXY].items()},
        "proxy_setup": {
            "reference": f"{REFERENCE_FIELD} daily mean ({n_steps} steps, UTC day) < 273.15 K, {', '.join(days)}",
            "days": days,
            "days_note": "one day: 2015-01-01 is the only day of the sample data with GLDAS soil temperature (the "
            "2016-01-01 GLDAS-2.1 files hold soil moisture only), so no split by day or year",
            "features": FEATURE_SETS,
            "split": "70/15/15 by spatial blocks of pixels, the block edge sized from the predictors' variogram "
            "range (reference labels not used); by year impossible (one day)",
            "block_deg": {r: v["block_deg"] for r, v in blocks.items()},
            "blocks": blocks,
            "elevation": "not derivable from the sample files",
            "frozen_cells": {k: int(v["frozen"]) for k, v in grids.items()},
            "predicted_cells": {k: int(v["predicted"]) for k, v in grids.items()},
        },
        "block_cv": block_cv,
        "fixed_blocks": fixed,
        "uncertainty": uncertainty,
        "probability_calibration": calibration,
        "twin": (
            {
                **brief(results[DataKind.SYNTHETIC]["twin"]),
                "test_baseline_overall_accuracy": baseline,
                "importances": results[DataKind.SYNTHETIC]["twin"].importances,
                "block_deg": twin_info["block_deg"],
                "blocks": twin_info,
            }
            if params["twin"]
            else None
        ),
        "validation_results": "none: classification metrics do not fit the KGE-style ValidationResult columns; see "
        "freeze_thaw_metrics.csv/json",
    }
    notes = (
        "PROXY EXPERIMENT on real GLDAS numbers (no brightness temperature, no SMOS/SMAP FT in the sample data): "
        f"reference GLDAS 0-10 cm soil temperature < 273.15 K on {', '.join(days)} (UTC day), predictors GLDAS "
        "deeper soil temperatures and latitude, split by spatial blocks as large as the predictors' variogram range; "
        "plus a SYNTHETIC TWIN with a known answer. " + ft.ACCURACY_MEASURES
    )
    fitted_on = {
        "spatial block edge (variogram range of the predictors)": "every pixel's predictor values and coordinates "
        "of the region (or twin); no reference label, so held-out labels cannot change it",
        "reference variogram range (target_range_train_deg, diagnostic only)": "training blocks",
        "Extremely Randomized Trees (each experiment)": "training blocks (a random subsample of max_train_samples "
        "rows where larger)",
        "min_samples_leaf (selected)": "validation blocks (Cohen's kappa), never the test blocks",
        "block_cv folds": "trees on the training folds, leaf size on the next fold's blocks, scored on the held-out "
        "fold's blocks",
        "reference threshold 273.15 K": "fixed, not fitted",
        "feature scaling": "none (trees need no scaler)",
        "probability_frozen (published)": "the selected model's trees (training blocks of the 70/15/15 split): "
        "predict_proba, the trees' mean class fractions in the leaves",
        "probability calibration (summary uncertainty, split block_cv)": "out-of-fold probabilities: each sample's "
        "from the block-CV fold model that never saw its block (trees on the training folds, leaf size on the next "
        "fold); reliability bins fixed by reliability_bins, nothing fitted to the outcomes",
    }
    return ProductOutput(
        files=out_files,
        validation=[],
        summary=summary,
        notes=notes,
        parameters=params,
        statistics_fitted_on=fitted_on,
    )


def brief(r: ft.FitResult) -> dict:
    """Per set: ``n``, overall accuracy, kappa, per-class recall and the confusion matrix of a fit."""
    return {
        s: {
            k: r.metrics[s][k]
            for k in ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen", "confusion_matrix")
        }
        for s in ft.SETS
    }


def _row(m: dict) -> dict:
    """A CSV row's scores from a :func:`brief` set (or a pooled block-CV result)."""
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    return {
        **{k: m[k] for k in ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen")},
        "precision_frozen": tp / (tp + fp) if tp + fp else None,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "frozen_fraction_reference": (fn + tp) / m["n"],
    }


def _calibration(
    data: ft.Samples, split, res: ft.FitResult, cv: ft.BlockCV | None, block: float, bins: int
) -> tuple[dict, unc.Reliability | None]:
    """How well the probability of frozen holds at held-out samples.

    Returns
    -------
    figures : dict
        ``headline`` (``"block_cv"``); ``block_cv``: the reliability of the out-of-fold probabilities of
        the spatial-block cross-validation (:func:`products.generators.freeze_thaw.block_cv_reliability`;
        None without a block CV); ``test``: the published (selected) model's own probabilities on the
        test blocks of its 70/15/15 split (``split = "test"``, fewer blocks; a cross-check that the
        published file itself lets anyone recompute from ``probability_frozen``, ``ft_reference`` and
        ``split``).
    headline : products.methods.uncertainty.Reliability or None
        The ``block_cv`` figures, for the summary entry and the file's comment.
    """
    headline = ft.block_cv_reliability(data, cv, bins=bins, block_deg=block) if cv is not None else None
    test = np.asarray(split) == 2
    own = unc.reliability(
        ft.class_probability(res.model, data.X[test]).astype("float32"),  # as the file stores them
        data.y[test] == ft.class_code("frozen"),
        bins=bins,
        split="test",
        note="the published model's probabilities (float32, as stored in probability_frozen) on the test blocks "
        "of its 70/15/15 split (held out from its fit and its leaf-size choice)",
    )
    figures = {"headline": "block_cv", "block_cv": headline.as_dict() if headline else None, "test": own.as_dict()}
    return figures, headline


def _probability_sentence(calibration_text: str) -> str:
    """The sentence of a grid's global ``comment`` on ``probability_frozen`` and its measured calibration."""
    return (
        f"Uncertainty: {ft.PROBABILITY_NAME} is the probability of the class frozen from the selected model's "
        f"predict_proba (the trees' mean leaf class fractions, fitted on the training blocks only), linked from "
        f"{ft.STATE_NAME} by ancillary_variables. {calibration_text.rstrip('.')}."
    )


def _split_attrs(info: dict) -> dict:
    """The ``split`` variable's attributes: the sets, and the block edge and what sized it."""
    return {
        **ft.SPLIT_ATTRS,
        "long_name": f"sample set of the pixel (spatial blocks of {info['block_deg']:g} degrees)",
        "comment": info["basis"],
    }
