"""What each validation split of a published version holds: the one place that says so, in both languages.

A :class:`~products.models.ValidationResult` row names its ``split`` (``validation``, ``twin_cv``,
``water_balance``, ...) and, in the pooled label of most products, its data kind
(``"synthetic twin: all stations (pooled)"``). :data:`SPLITS` describes each split name the pipelines
store: the table's title, how the held-out set was chosen, what unit is held out, what the reference
is, whether it is independent of everything that made the scored numbers, the data kind when the
rows do not say it, and the limits a reader must know beside the numbers. The page and the version
lineage read only this mapping (:func:`split_info`, :func:`row_kind`); a split not listed here is
shown under its own name and never called independent.

Pure description (no database): translated lazily, so the page shows the visitor's language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from products.data_kind import DataKind
from products.methods.metrics import NEAR_ZERO_MEAN, NEAR_ZERO_MEAN_REASON, ZERO_MEAN_ANOMALY


@dataclass(frozen=True)
class SplitInfo:
    """How one validation split was made and what its scores can show.

    Attributes
    ----------
    title : str
        The table's heading. "Against independent stations" only where ``independent`` is true.
    partition : str
        How the scored samples were held out (by station, basin, year, block of days, spatial block).
    unit : str
        What the split's per-site rows are (towers, basins, stations, grid points): the units scored,
        counted where the version has those rows (the held-out units themselves for a split by station).
    reference : str
        What the scores are computed against.
    independent : bool
        True only where the reference took no part in making the scored numbers (held-out real
        stations, basins or towers); synthetic twins, proxy experiments, withheld samples of the
        series that was fitted and consistency diagnostics are False.
    kind : DataKind
        The data kind of the rows when their labels do not name one.
    limit : str
        What the scores do not show (empty when nothing needs saying).
    """

    title: str | Promise
    partition: str | Promise
    unit: str | Promise
    reference: str | Promise
    independent: bool
    kind: DataKind
    limit: str | Promise = ""


SPLITS: dict[str, SplitInfo] = {
    # --- evapotranspiration (et_fusion)
    "validation": SplitInfo(
        _(
            "Against independent stations: validation months of every tower, each predicted by a model "
            "trained without that tower (leave-site-out)"
        ),
        _("by station (leave-site-out), validation months only"),
        _("towers"),
        _("monthly flux-tower ET (FLUXNET2015, CARDAMOM-FluxVal), months never used in training"),
        True,
        DataKind.REAL,
    ),
    "cv": SplitInfo(
        _(
            "Against independent stations: training months of every tower, each predicted by the fold "
            "that left that tower out (cross-validation grouped by station)"
        ),
        _("by station (cross-validation folds)"),
        _("towers"),
        _("monthly flux-tower ET of the training months"),
        True,
        DataKind.REAL,
        _("The published model was trained on all these months; the fold models were not."),
    ),
    "fusion_held_out": SplitInfo(
        _("Fusion from inputs available off-tower and each input product against the same towers (leave-tower-out)"),
        _("by station (leave-tower-out)"),
        _("towers"),
        _("ECOSTRESS cal/val tower ET at towers left out of training and tuning"),
        True,
        DataKind.REAL,
        _(
            "Instantaneous ET at the satellite overpass (mm h-1). The fused model takes only inputs that exist "
            "where there is no tower, at the tower's pixel: the ECOSTRESS products and their land-surface "
            "temperature, NDVI and albedo, GEOS-5 FP air temperature and humidity and ECOSTRESS net and shortwave "
            "radiation. The gridded ET of this dataset is made by the five-driver tower model, not by this fusion."
        ),
    ),
    "fusion_upper_bound_tower_met": SplitInfo(
        _(
            "Upper bound, not a product: fusion that also takes the radiation, air temperature and humidity "
            "measured at the scored tower"
        ),
        _("by station (leave-tower-out)"),
        _("towers"),
        _("ECOSTRESS cal/val tower ET at towers left out of training and tuning"),
        False,
        DataKind.REAL,
        _(
            "No grid cell has these inputs: it shows what the method could do with tower meteorology, not what "
            "the product does."
        ),
    ),
    "grid_at_held_out_towers": SplitInfo(
        _("Gridded ET (five-driver tower model) at the towers' held-out months"),
        _("by time: the validation months of each tower"),
        _("towers"),
        _("monthly flux-tower ET (FLUXNET2015, CARDAMOM-FluxVal) in the cell of each tower"),
        False,
        DataKind.REAL,
        _(
            "The model saw other months of the same towers. Monthly means of the grid cover only the forcing days "
            "of the month; days are UTC calendar days."
        ),
    ),
    "reconstruction_held_out": SplitInfo(
        _("Stage 1: each product reconstructed from forcing, scored on basins left out"),
        _("by basin (leave-basin-out)"),
        _("basins"),
        _("each product's own monthly basin ET (a product, not an observation)"),
        False,
        DataKind.REAL,
        _("It shows how well forcing reproduces each product, not how close either is to the true ET."),
    ),
    # --- soil moisture, ML-DA (sm_mlda) and 1 km (sm_1km)
    "twin_insitu": SplitInfo(
        _("SYNTHETIC twin: every series against in-situ stations never used upstream"),
        _("by station"),
        _("synthetic stations"),
        _("synthetic in-situ series with a known truth"),
        False,
        DataKind.SYNTHETIC,
        _("A synthetic twin checks the method on made-up data: not comparable with published figures."),
    ),
    "twin_block_validation": SplitInfo(
        _("SYNTHETIC twin: stations held out in whole spatial blocks, none within the buffer of a training station"),
        _(
            "by spatial block: blocks and a buffer as wide as the distance over which the model's target stays "
            "correlated (its variogram on the twin)"
        ),
        _("synthetic stations"),
        _("synthetic in-situ series with a known truth"),
        False,
        DataKind.SYNTHETIC,
        _(
            "A synthetic twin checks the method on made-up data: not comparable with published figures. Stations "
            "inside the buffer are used nowhere."
        ),
    ),
    "twin_block_cv": SplitInfo(
        _("SYNTHETIC twin: leave-one-block-out cross-validation with a buffer, on the training stations"),
        _("by spatial block (cross-validation folds, with a buffer)"),
        _("synthetic stations"),
        _("synthetic in-situ series with a known truth"),
        False,
        DataKind.SYNTHETIC,
        _("A synthetic twin checks the method on made-up data: not comparable with published figures."),
    ),
    "twin_validation": SplitInfo(
        _("SYNTHETIC twin: stations held out at random, never used in training (inflated)"),
        _("by station, at random"),
        _("synthetic stations"),
        _("synthetic in-situ series with a known truth"),
        False,
        DataKind.SYNTHETIC,
        _(
            "Stations held out at random have training neighbours within the target's correlation range: "
            "inflated; read the spatial-block table. A synthetic twin: not comparable with published figures."
        ),
    ),
    "twin_cv": SplitInfo(
        _("SYNTHETIC twin: cross-validation grouped by station, on the training stations"),
        _("by station (cross-validation folds)"),
        _("synthetic stations"),
        _("synthetic in-situ series with a known truth"),
        False,
        DataKind.SYNTHETIC,
        _(
            "A synthetic twin checks the method on made-up data: not comparable with published figures. Where a "
            "spatial-block table is beside it, folds of stations at random are inflated by neighbours."
        ),
    ),
    "real_withheld_months": SplitInfo(
        _("REAL: nudging toward ASCAT/ERS, scored on whole calendar months withheld from the nudging"),
        _(
            "by calendar month: about 20 % of each grid point's months withheld at random; the retrievals of the 9 "
            "days before each month are left out of the nudging (3 e-folding times of its 3-day memory); the "
            "background climatology is fitted on the assimilated retrievals only"
        ),
        _("grid points"),
        _("the ASCAT/ERS retrievals of the withheld months"),
        False,
        DataKind.REAL,
        _("The reference is the series nudged toward, in other months: a check of the nudging, not of soil moisture."),
    ),
    "real_withheld": SplitInfo(
        _("REAL: nudging toward ASCAT/ERS, scored on single retrieval days withheld from the nudging (inflated)"),
        _(
            "by day: a random 20 % of retrievals withheld, no buffer; the background is fitted on the assimilated "
            "retrievals only"
        ),
        _("grid points"),
        _("ASCAT/ERS retrievals withheld from the same series the nudging uses"),
        False,
        DataKind.REAL,
        _(
            "Day-to-day autocorrelation and the 3-day memory carry neighbouring retrievals into a withheld day: "
            "inflated; compare with the whole-month table."
        ),
    ),
    "real_insitu": SplitInfo(
        _("REAL: satellite series against collocated in-situ stations"),
        _("by station"),
        _("stations"),
        _("ISMN in-situ soil moisture at collocated stations"),
        False,
        DataKind.REAL,
        _(
            "Each year is rescaled with the mean and spread of the station's other years (never the scored year): r "
            "is unaffected, bias and ubRMSE depend on the rescaling; a one-year record is not scored."
        ),
    ),
    # --- terrestrial water storage (tws_rec)
    "year_block_held_out": SplitInfo(
        _("Reconstruction scored on blocks of GRACE years held out with a buffer on either side"),
        _(
            "by year block: 3 years held out, 2 buffer years on either side left out of training (the predictors' longest memory is 24 months)"
        ),
        _("basins"),
        _("GRACE mascon storage anomalies (JPL, CSR) of the held-out years"),
        True,
        DataKind.REAL,
    ),
    "year_held_out": SplitInfo(
        _(
            "Reconstruction scored on GRACE years held out of training (r and NSE; KGE is not meaningful "
            "for anomalies with a mean near zero)"
        ),
        _("by year: one calendar year at a time"),
        _("basins"),
        _("GRACE mascon storage anomalies (JPL, CSR) of the held-out years"),
        False,
        DataKind.REAL,
        _(
            "Predictors remember 12-24 months, so a held-out year is not independent of the training years "
            "beside it: these scores are inflated."
        ),
    ),
    "independent_itsg": SplitInfo(
        _("Reconstruction and the mascon solutions against ITSG-Grace2018, a solution no model was trained on"),
        _("by year block (the same blocked held-out predictions)"),
        _("basins"),
        _("ITSG-Grace2018 storage anomalies of basins matched by name and area"),
        False,
        DataKind.REAL,
        _("ITSG uses the same GRACE satellites as JPL and CSR: an alternative solution, not an independent check."),
    ),
    "water_balance": SplitInfo(
        _("Water balance: dS/dt of GRACE storage against P − ET − R per basin"),
        _("none: every basin-month"),
        _("basins"),
        _("P − ET − R of ERA5-Land per basin"),
        True,
        DataKind.REAL,
        _(
            "Nothing is held out: GRACE storage change against a budget made from other data, whose own errors "
            "are in the differences. A row of the reconstruction here (…_rec_dsdt, older versions) is circular: "
            "it is built from P − ET − R."
        ),
    ),
    "consistency_diagnostic": SplitInfo(
        _("Consistency diagnostic, not validation: dS/dt of the reconstruction against P − ET − R"),
        _("none: every basin-month"),
        _("basins"),
        _("P − ET − R of ERA5-Land per basin, from which the reconstruction is built"),
        False,
        DataKind.REAL,
        _("Circular: it measures the reconstruction's inputs, not its skill."),
    ),
}

#: Data kinds as a visitor reads them.
KIND_NAMES = {
    DataKind.REAL: _("real data"),
    DataKind.SYNTHETIC: _("synthetic twin"),
    DataKind.PROXY: _("proxy experiment"),
}

#: Freeze/thaw classification experiments (stored in the run summary, not as ValidationResult rows).
CLASSIFICATION = {
    DataKind.PROXY: SplitInfo(
        _("Proxy experiment: the GLDAS top layer predicted from its own deeper layers"),
        _("spatial blocks as wide as the predictors' variogram range (one day)"),
        _("test pixels"),
        _("GLDAS-1 Noah 0–10 cm soil temperature (UTC daily mean) below 273.15 K"),
        False,
        DataKind.PROXY,
        _("This accuracy measures the pipeline, not a freeze/thaw skill: not comparable with published figures."),
    ),
    DataKind.SYNTHETIC: SplitInfo(
        _("SYNTHETIC twin: a made-up state with a known answer"),
        _("spatial blocks as wide as the predictors' variogram range"),
        _("test pixels"),
        _("the synthetic truth"),
        False,
        DataKind.SYNTHETIC,
        _("A synthetic twin checks the method on made-up data: not comparable with published figures."),
    ),
}


def split_info(split: str) -> SplitInfo:
    """The description of ``split``; a name not in :data:`SPLITS` is its own title, never independent.

    Parameters
    ----------
    split : str
        A ``ValidationResult.split`` value.

    Returns
    -------
    SplitInfo
    """
    if split in SPLITS:
        return SPLITS[split]
    return SplitInfo(split, "–", "–", "–", False, DataKind.REAL)


def row_kind(split: str, labels: Iterable[str]) -> DataKind:
    """The data kind of a split's rows: the kind their labels start with (``"synthetic twin: ..."``),
    else the split's own (:data:`SPLITS`), else real.

    Parameters
    ----------
    split : str
        A ``ValidationResult.split`` value.
    labels : iterable of str
        The labels of its rows (pooled and class labels carry the kind where the pipeline writes it).

    Returns
    -------
    DataKind
    """
    for label in labels:
        for kind in DataKind:
            if label.lower().startswith(f"{kind.value}:"):
                return kind
    return split_info(split).kind


def split_order(split: str) -> tuple[int, str]:
    """Sort key of a split's table on the page: the order of :data:`SPLITS`, unknown names last."""
    order = list(SPLITS)
    return (order.index(split) if split in order else len(order), split)


#: Why KGE and beta of a row are no numbers (``ValidationResult.not_meaningful``), in the visitor's language.
NOT_MEANINGFUL: dict[str, str | Promise] = {
    ZERO_MEAN_ANOMALY: _("zero-mean anomaly"),
    NEAR_ZERO_MEAN_REASON: _("observed mean near zero against its spread (|mean| < %(fraction)s standard deviation)")
    % {"fraction": f"{NEAR_ZERO_MEAN:g}"},
}


def not_meaningful_reasons(rows: Iterable) -> list[str | Promise]:
    """The distinct reasons (translated; an unknown one as stored) why rows give KGE and beta as no numbers.

    Parameters
    ----------
    rows : iterable of objects with a ``not_meaningful`` attribute (ValidationResult rows).

    Returns
    -------
    list
        In order of first appearance; empty when every row's KGE and beta are numbers.
    """
    seen = dict.fromkeys(r.not_meaningful for r in rows if r.not_meaningful)
    return [NOT_MEANINGFUL.get(reason, reason) for reason in seen]
