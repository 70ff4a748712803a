"""The closure on the REAL basin tables (lehmannfa/water_storage_changes): GRACE JPL mascon storage and ERA5-Land
P, ET, R over the GRDC major river basins, the same series the published TWS (``tws_jpl`` of tws_rec_basins.nc,
gaps kept) and ET (``et_era5land`` of et_basin_reconstruction.nc) versions carry. Pure: read with the ingestion
reader, no database."""

from pathlib import Path

import numpy as np
import pytest

from ingestion.readers import basins
from portal.closure import budget
from products.generators import tws_rec
from tests.closure.test_budget import by_hand

FILES = {
    "p": ("P_ERA5_Land_monthly.csv", "p_era5land"),
    "et": ("ET_ERA5_Land_monthly.csv", "et_era5land"),
    "r": ("R_ERA5_Land_monthly.csv", "r_era5land"),
    "s": ("TWS_GRACE_JPL_mascons_monthly.csv", "tws_jpl"),
}


@pytest.fixture(scope="module")
def real(shared_data):
    folder = Path(shared_data) / "lehmannfa_basin_water_budget"
    tables = {}
    for key, (name, variable) in FILES.items():
        data = basins.read(folder / name)
        # as the TWS product publishes it: the GRACE/GRACE-FO gap stays a gap
        tables[key] = budget.long_to_table(tws_rec.mask_gaps(data.observations), variable)
    attributes = basins.read_basins_dbf(folder / "basins.dbf")
    return tables, attributes


def test_real_basins_match_the_independent_computation_and_close_plausibly(real):
    t, _ = real
    result = budget.closure(t["p"], t["et"], t["r"], t["s"])
    stats = result.statistics
    assert len(stats) > 150  # about 200 GRDC basins have all four terms
    for basin in list(stats.index[:: max(len(stats) // 4, 1)]):
        months = result.residual.index
        arrays = [t[k].reindex(months)[basin].to_numpy() for k in ("p", "et", "r", "s")]
        _, expected = by_hand(*arrays)
        for key in budget.STATISTICS:
            assert stats.loc[basin, key] == pytest.approx(expected[key], rel=1e-9, nan_ok=True), (basin, key)
    # GRACE dS/dt follows ERA5-Land P - ET - R in most basins (Rodell et al. 2015: closure within errors)
    assert stats["r"].median() > 0.5 and abs(stats["mean_residual"].median()) < 5.0
    assert stats["rmse"].median() > 1.0  # ... but it does not close exactly: the residual is real


def test_real_regions_are_area_weighted_over_basins_with_a_region(real):
    t, attributes = real
    result = budget.region_closure(t["p"], t["et"], t["r"], t["s"], attributes)
    assert budget.ALL_BASINS in result.statistics.index and len(result.statistics) >= 4
    assert np.isfinite(result.statistics.loc[budget.ALL_BASINS, "r"])
    # large-area means average out independent errors: All basins closes at least as well as the median basin
    basin = budget.closure(t["p"], t["et"], t["r"], t["s"]).statistics
    assert result.statistics.loc[budget.ALL_BASINS, "r"] >= basin["r"].median()
