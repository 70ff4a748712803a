"""The five reference products: which catalog record each regenerates and what its seed published.

Pure data (no Django, no numpy): the one home of the seeds' published figures, read by the pages
(``published``) and by the generators that compare their results with them (``SEED_FIGURES`` of
:mod:`products.generators.sm_mlda`, :mod:`products.generators.sm_1km`,
:mod:`products.generators.freeze_thaw`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GCMD_PLATFORMS = (
    "GCMD Platform Keywords (https://gcmd.earthdata.nasa.gov/kms/concepts/concept_scheme/platforms) "
    "where one exists; in situ network names otherwise"
)
GCMD_INSTRUMENTS = "GCMD Instrument Keywords (https://gcmd.earthdata.nasa.gov/kms/concepts/concept_scheme/instruments)"


@dataclass(frozen=True)
class ProductSpec:
    """A reference product: its record, the seed's published figures, and the platforms and
    instruments whose data its method uses (ACDD ``platform`` / ``instrument``, GCMD names)."""

    key: str
    dataset_id: str  # TPDC record id in ../shared/catalog
    published: dict = field(default_factory=dict)  # the seed's published validation figures
    # the seed's published figures of the products it was compared with (name -> figures), same units
    compared: dict = field(default_factory=dict)
    implemented: bool = False
    platforms: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    vertical: tuple[float, float, str] | None = None  # (min, max, positive) in m: the layer the values describe
    variables: tuple[str, ...] = ()  # CF standard names of what it publishes (the search's variable facet)


PRODUCTS: dict[str, ProductSpec] = {
    "et_fusion": ProductSpec(
        "et_fusion",
        "e22aef74-4534-4624-8e2e-f4eab129675b",
        published={
            "kge": 0.857,
            "rmse": 0.726,
            "rmse_units": "mm d-1",
            "stations": 462,
            "time_step": "daily",
            "grid": "0.1°",
            "period": "1950–2024",
        },
        implemented=True,
        platforms=("FLUXNET", "ISS", "Models/Analyses > ERA5-Land"),
        instruments=("EDDY CORRELATION DEVICES", "ECOSTRESS"),
        vertical=(0.0, 0.0, "up"),  # a flux at the surface
        variables=("water_evapotranspiration_flux",),
    ),
    "sm_mlda": ProductSpec(
        "sm_mlda",
        "ieee-dataport-spatiotemporal-seamless-global-surface-soil-moisture",
        published={"r_median": 0.741, "ubrmse": 0.0437, "ubrmse_units": "m3 m-3", "stations": 1094},
        compared={
            "smap_l4": {"r": 0.717, "ubrmse": 0.0452},
            "era5_land": {"r": 0.706, "ubrmse": 0.0452},
            "gldas": {"r": 0.633, "ubrmse": 0.0501},
        },  # medians over the same ISMN stations
        implemented=True,
        platforms=("SMAP", "METOP-A", "ISMN", "Models/Analyses > ERA5"),
        instruments=("SMAP L-BAND RADIOMETER", "ASCAT", "SOIL MOISTURE PROBES"),
        vertical=(0.0, 0.05, "down"),  # surface soil moisture: the top 5 cm
        variables=("volume_fraction_of_condensed_water_in_soil",),
    ),
    "freeze_thaw": ProductSpec(
        "freeze_thaw",
        "f52826e1-c61c-4b79-a43c-4ece3a8eca18",
        published={"overall_accuracy": "> 86 %"},
        implemented=True,
        platforms=("Aqua", "FY-3B", "SMOS", "Models/Analyses > GLDAS"),
        instruments=("AMSR-E", "MWRI", "MIRAS"),
        vertical=(0.0, 0.1, "down"),  # the GLDAS top layer, 0-10 cm
        # a flag of the state: the CF table has no standard name for it (portal.catalog.vocabulary)
        variables=("surface_freeze_thaw_state",),
    ),
    "tws_rec": ProductSpec(
        "tws_rec",
        "6b23bed9-627c-4653-8157-2ddd5b323888",
        published={},
        implemented=True,
        platforms=("GRACE", "GRACE-FO", "Models/Analyses > ERA5"),
        instruments=("KBR", "LRI"),
        variables=("land_water_amount",),
    ),
    "sm_1km": ProductSpec(
        "sm_1km",
        "30131436-88d1-4be3-8e3d-14905a29d6d6",
        published={"r": 0.89, "ubrmse": 0.045, "ubrmse_units": "m3 m-3", "stations": 2346},
        implemented=True,
        platforms=("Terra", "Aqua", "ISMN", "Models/Analyses > ERA5"),
        instruments=("MODIS", "SOIL MOISTURE PROBES"),
        vertical=(0.0, 0.05, "down"),  # surface soil moisture: the top 5 cm
        variables=("volume_fraction_of_condensed_water_in_soil",),
    ),
}


def product_for_dataset(dataset_id: str) -> ProductSpec | None:
    """The reference product that regenerates catalog record ``dataset_id`` (a TPDC id), or None."""
    return next((p for p in PRODUCTS.values() if p.dataset_id == dataset_id), None)
