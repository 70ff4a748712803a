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
  spatial blocks of pixels (2 degree blocks on the plateau, 5 degree globally); a split by year is
  impossible with one day.
* **synthetic twin** (``data_kind = "synthetic twin"``) -- frozen where a synthetic temperature
  field is below 0 degC, noisy brightness-like, elevation and latitude predictors plus a pure-noise
  one: the chain must beat the known single-channel rule and ignore the noise.

Outputs: one daily state grid per experiment (``ft_state`` uint8 0 thawed / 1 frozen / 255 fill,
CF flags, with ``ft_reference`` and the ``split`` of each pixel), ``freeze_thaw_metrics.csv`` (one
row per experiment and set: confusion matrix, overall accuracy, Cohen's kappa, per-class recall) and
``freeze_thaw_metrics.json`` (the same with model selection and feature importances). Classification
metrics do not fit the KGE-style ValidationResult columns, so no ValidationResult rows are written;
the figures are in the version's summary (lineage) and these files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import xarray as xr
from django.conf import settings

from ingestion.readers import gldas
from products.data_kind import DataKind
from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin
from products.lineage import ProductOutput, RunError, Stages, file_attributes, file_input, record_inputs, twin_input
from products.methods import cf
from products.models import GenerationRun

GLDAS_DAY = "gldas_testdata/img2ts_test/grib/2015/001"
REFERENCE_FIELD = "SoilTMP0_10cm_inst"
REGIONS = {"tibetan_plateau": (73.0, 25.0, 105.0, 40.0), "global": None}
FEATURE_SETS = {
    "gldas_soil": ["t_soil_10_40cm", "t_soil_40_100cm", "t_soil_100_200cm", "t_soil_10_40cm_range", "lat"],
    "deep_only": ["t_soil_100_200cm", "lat"],
}
DEFAULTS = {
    "seed": 42,
    "regions": list(REGIONS),
    "block_deg": {"tibetan_plateau": 2.0, "global": 5.0},
    "n_estimators": 100,
    "min_samples_leaf": [1, 5, 20],
    "max_train_samples": 60000,
    "n_jobs": 1,
    "ablation": True,
    "twin": True,
    "twin_shape": [2, 60, 128],
    "twin_tb_noise_k": 3.0,
    "gldas_folder": GLDAS_DAY,
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
    return params


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
        Time steps averaged.

    Raises
    ------
    RunError
        A soil temperature layer is missing, or the files span more than one day.
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
    if means.sizes["time"] != 1:
        raise RunError(f"GLDAS files span {means.sizes['time']} days; the proxy experiment takes one day")
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
    return predictors, reference, int(cube.sizes["time"])


def _box(ds, bbox):
    """``ds`` within ``bbox`` (lon0, lat0, lon1, lat1; None: all of it)."""
    if bbox is None:
        return ds
    lon0, lat0, lon1, lat1 = bbox
    return ds.sel(lat=slice(lat0, lat1), lon=slice(lon0, lon1))


def freeze_thaw_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """GLDAS proxy experiment (Tibetan Plateau box and globe) and synthetic twin; see the module docstring.

    Parameters (``run.parameters``, all optional): ``regions`` (subset of ``tibetan_plateau``,
    ``global``), ``block_deg`` (per region), ``n_estimators``, ``min_samples_leaf`` (candidates chosen
    on the validation set), ``max_train_samples``, ``n_jobs``, ``seed``, ``ablation`` (also fit the
    ``deep_only`` feature set), ``twin``, ``twin_shape`` ([days, lat, lon]), ``twin_tb_noise_k``,
    ``gldas_folder`` (relative to ``SHARED_DATA_DIR``).

    Raises
    ------
    RunError
        Unknown parameters or regions; no GLDAS GRIB file in the folder.
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
    base_attrs = {**file_attributes(run), "seed_overall_accuracy": ft.SEED_FIGURES["overall_accuracy"]}

    with stages("read_gldas"):
        folder = Path(settings.SHARED_DATA_DIR) / params["gldas_folder"]
        files = sorted(folder.glob("GLDAS_NOAH025*.grb"))
        if not files:
            raise RunError(f"no GLDAS GRIB file in {folder} (SHARED_DATA_DIR={settings.SHARED_DATA_DIR})")
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

    results: dict[str, dict] = {DataKind.PROXY: {}, DataKind.SYNTHETIC: {}}
    out_files: dict[str, str] = {}
    grids: dict[str, dict] = {}
    for region in params["regions"]:
        with stages(f"proxy_{region}"):
            bbox = REGIONS[region]
            sub = _box(predictors, bbox)
            ref = _box(predictors.assign(ref=(("time", "lat", "lon"), reference)), bbox)["ref"].values.astype("u1")
            block = (
                float(params["block_deg"].get(region, 5.0))
                if isinstance(params["block_deg"], dict)
                else float(params["block_deg"])
            )
            main = None
            for fs_name, features in FEATURE_SETS.items():
                if fs_name != "gldas_soil" and not params["ablation"]:
                    continue
                data = ft.samples(sub, ref, features, reference_source=REFERENCE_FIELD)
                split = ft.block_split(data.lat, data.lon, block, seed=seed)
                res = ft.fit_select(data, split, **fit_kw)
                results[DataKind.PROXY][f"{region}:{fs_name}"] = res
                if fs_name == "gldas_soil":
                    main = (data, split, res, features)
            data, split, res, features = main
            name = f"freeze_thaw_proxy_{region}.nc"
            shape = tuple(sub.sizes[d] for d in ("time", "lat", "lon"))
            grids[region] = ft.write_state_grid(
                workdir / name,
                predictors=sub,
                features=features,
                predict=res.model.predict,
                data_kind=DataKind.PROXY,
                extra={
                    "ft_reference": (
                        ref,
                        {
                            **ft.STATE_ATTRS,
                            "long_name": "reference: GLDAS 0-10 cm soil temperature (daily mean) < 273.15 K",
                        },
                    ),
                    "split": (ft.grid_of(data, split, shape, ft.SPLIT_FILL, "i1"), ft.SPLIT_ATTRS),
                },
                attrs={
                    **base_attrs,
                    "title": f"Freeze/thaw state, PROXY EXPERIMENT ({region.replace('_', ' ')}), 2015-01-01",
                    "comment": "PROXY EXPERIMENT, not the seed's product: no brightness temperature and no SMOS/SMAP "
                    "FT file exist in the sample data. Reference = GLDAS-1 Noah 0-10 cm soil temperature "
                    "(daily mean of 6-hourly steps) < 273.15 K; predictors = GLDAS deeper soil temperatures "
                    "and latitude (no elevation-like field is derivable). Split 70/15/15 by "
                    f"{block:g}-degree spatial blocks of pixels (one day: no split by year).",
                    "region_bbox": json.dumps(bbox) if bbox else "global GLDAS land",
                    **cf.soil_layer_attributes(0.0, 0.1),  # the state of the 0-10 cm layer the reference defines
                    "model_parameters": res.params,
                    "metrics": {s: res.metrics[s] for s in ft.SETS},
                },
            )
            out_files[name] = (
                f"PROXY EXPERIMENT ({region}): daily freeze/thaw state grid of 2015-01-01 (uint8, 0 thawed, "
                "1 frozen) predicted by Extremely Randomized Trees from GLDAS deeper soil temperatures and "
                "latitude, with the GLDAS 0-10 cm reference and each pixel's train/validation/test set"
            )

    if params["twin"]:
        with stages("twin"):
            n_days, n_lat, n_lon = (int(v) for v in params["twin_shape"])
            twin = ft_twin.make_twin(
                n_lat=n_lat, n_lon=n_lon, n_days=n_days, tb_noise_k=float(params["twin_tb_noise_k"]), seed=seed
            )
            data = ft.samples(twin.predictors, twin.truth, twin.features)
            split = ft.block_split(data.lat, data.lon, 2.0, seed=seed)
            res = ft.fit_select(data, split, **fit_kw)
            results[DataKind.SYNTHETIC]["twin"] = res
            shape = twin.truth.shape
            test_mask = ft.grid_of(data, split == 2, shape, False, bool)
            baseline = ft_twin.twin_baseline_accuracy(twin, test_mask)
            name = "freeze_thaw_twin.nc"
            grids["twin"] = ft.write_state_grid(
                workdir / name,
                predictors=twin.predictors,
                features=twin.features,
                predict=res.model.predict,
                data_kind=DataKind.SYNTHETIC,
                extra={
                    "ft_reference": (twin.truth, {**ft.STATE_ATTRS, "long_name": "synthetic truth: T < 0 degC"}),
                    "split": (ft.grid_of(data, split, shape, ft.SPLIT_FILL, "i1"), ft.SPLIT_ATTRS),
                },
                attrs={
                    **base_attrs,
                    "title": "Freeze/thaw state, SYNTHETIC TWIN",
                    "comment": "SYNTHETIC TWIN with a known answer: frozen where a synthetic temperature field is "
                    "below 0 degC; predictors a noisy brightness-like channel, noisy elevation, latitude "
                    "and pure noise.",
                    "test_baseline_overall_accuracy": baseline,
                },
            )
            out_files[name] = "SYNTHETIC TWIN: state grid, synthetic truth and split (known answer)"

    with stages("metrics"):
        table = pd.concat([ft.metrics_table(r, data_kind=kind) for kind, r in results.items() if r], ignore_index=True)
        table.to_csv(workdir / "freeze_thaw_metrics.csv", index=False)
        out_files["freeze_thaw_metrics.csv"] = (
            "classification metrics per experiment and set (proxy experiment and "
            "synthetic twin): confusion matrix, overall accuracy, kappa, recall"
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
                }
                for name, r in rs.items()
            }
            for kind, rs in results.items()
        }
        if params["twin"]:
            detail[DataKind.SYNTHETIC]["twin"]["test_baseline_overall_accuracy"] = baseline
        (workdir / "freeze_thaw_metrics.json").write_text(json.dumps({"seed": ft.SEED_FIGURES, **detail}, indent=1))
        out_files["freeze_thaw_metrics.json"] = "the same metrics with model selection and feature importances (JSON)"

    def brief(r):
        return {
            s: {
                k: r.metrics[s][k]
                for k in ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen", "confusion_matrix")
            }
            for s in ft.SETS
        }

    summary = {
        "data_kind": {"proxy": DataKind.PROXY, "twin": DataKind.SYNTHETIC if params["twin"] else "not run"},
        "seed": ft.SEED_FIGURES,
        "proxy": {name: brief(r) for name, r in results[DataKind.PROXY].items()},
        "proxy_setup": {
            "reference": f"{REFERENCE_FIELD} daily mean ({n_steps} steps) < 273.15 K, 2015-01-01",
            "features": FEATURE_SETS,
            "split": "70/15/15 by spatial blocks of pixels; by year impossible (one day)",
            "block_deg": params["block_deg"],
            "elevation": "not derivable from the sample files",
            "frozen_cells": {k: int(v["frozen"]) for k, v in grids.items()},
            "predicted_cells": {k: int(v["predicted"]) for k, v in grids.items()},
        },
        "twin": (
            {
                **brief(results[DataKind.SYNTHETIC]["twin"]),
                "test_baseline_overall_accuracy": baseline,
                "importances": results[DataKind.SYNTHETIC]["twin"].importances,
            }
            if params["twin"]
            else None
        ),
        "validation_results": "none: classification metrics do not fit the KGE-style ValidationResult columns; see "
        "freeze_thaw_metrics.csv/json",
    }
    notes = (
        "PROXY EXPERIMENT on real GLDAS numbers (no brightness temperature, no SMOS/SMAP FT in the sample data): "
        "reference GLDAS 0-10 cm soil temperature < 273.15 K on 2015-01-01, predictors GLDAS deeper soil "
        "temperatures and latitude; plus a SYNTHETIC TWIN with a known answer. Seed: overall accuracy > 86 %."
    )
    return ProductOutput(files=out_files, validation=[], summary=summary, notes=notes)
