"""Text readers accept the variations real releases contain, and still reject a malformed file clearly (no database).

Every text format the project reads (FLUXNET2015, AmeriFlux BASE, REddyProc, the ECOSTRESS cal/val
tables, ISMN ``.stm`` files and static variables, the basin water-budget tables, CARDAMOM-FluxVal's
location and validation CSVs) is written to ``tmp_path`` twice: once as published and once with
one variation a real release or a re-save in a spreadsheet or editor produces -- a UTF-8 byte-order
mark, other line ends, a trailing delimiter on the header/metadata lines or on every line, quoted
header names, an extra unknown column, reordered columns, or all of them at once. The reader must
return the same stations and observations (compared frame by frame, exactly) for both.

The files are real: the shared sample files, or their first lines. The shared data has no FLUXNET2015
or AmeriFlux BASE CSV, so those two are the real REddyProc DE-Tha half-hours (1998) written in the
FLUXNET2015 FULLSET and AmeriFlux BASE column layouts.

A malformed file (a value that is not a number, a truncated line, a missing required column) must
raise a :class:`~ingestion.readers.base.ReaderError` naming the file, the line and the field, also
when the file carries all of the variations above (line numbers must not shift).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pytest
from ismn.filehandlers import StaticMetaFile

from ingestion.readers import ameriflux, basins, cardamom, ecostress, fluxnet, ismn, reddyproc
from ingestion.readers.base import PointData, ReaderError

SHARED = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data"))
LOCATIONS = SHARED / "cardamom_fluxval" / "location_fluxnet.csv"
REDDYPROC = SHARED / "reddyproc_DE-Tha" / "Example_DETha98.txt"
ECO_DIR = SHARED / "ecov002_calval_tables" / "ECOv002_calval_tables"
BASINS = SHARED / "lehmannfa_basin_water_budget"
CARDAMOM = SHARED / "cardamom_fluxval"
ISMN = SHARED / "ismn_testdata"
ARM1_DIR = ISMN / "Data_seperate_files_20170810_20180809/COSMOS/ARM-1"
ARM1 = ARM1_DIR / "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
ARM1_STATIC = ARM1_DIR / "COSMOS_COSMOS_ARM-1_static_variables.csv"
NODE505 = ISMN / (
    "extracted/multinetwork_header_values/SOILSCAPE/node505/"
    "SOILSCAPE_SOILSCAPE_node505_sm_0.050000_0.050000_EC5_20070101_20131231.stm"
)
NARBONNE = (
    ISMN
    / "format_ceop_sep/SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"
)
FLX_NAME = "FLX_DE-Tha_FLUXNET2015_FULLSET_HH_1998-1998_1-4.csv"
AMF_NAME = "AMF_DE-Tha_BASE_HH_1-5.csv"
EXTRA = "EXTRA_UNKNOWN"  # the name of the column a variant adds
BAD_NUMBER = "1O.5"  # letter O for zero: a typo no parser reads as a number
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module", autouse=True)
def real_data():
    for path in (LOCATIONS, REDDYPROC, ECO_DIR, BASINS, CARDAMOM, ARM1, NODE505, NARBONNE):
        assert path.exists(), f"{path} not found: set SHARED_DATA_DIR to the real sample data"


# --- a delimited text file taken apart and written back with variations -----------------------------------


@dataclass
class Layout:
    """A delimited text file: lines above the header, column names, an optional units row and data rows (cells as text)."""

    sep: str
    preamble: list[str]
    header: list[str]
    units: list[str] | None
    rows: list[list[str]]
    newline: str = "\n"
    final_newline: bool = True

    @property
    def first_line(self) -> int:
        """1-based line of the first data row."""
        return len(self.preamble) + 2 + (self.units is not None)


def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep))


def parse(raw: bytes, sep: str, *, preamble: int = 0, units_row: bool = False, max_rows: int | None = None) -> Layout:
    """Take a published file apart (only the first ``max_rows`` data rows when given)."""
    text = raw.decode("utf-8")
    newline = "\r\n" if "\r\n" in text else "\r" if "\r" in text else "\n"
    lines = text.split(newline)
    final = lines[-1] == ""
    if final:
        lines.pop()
    head = preamble + 1 + int(units_row)
    body = lines[head:] if max_rows is None else lines[head : head + max_rows]
    return Layout(
        sep,
        lines[:preamble],
        _split(lines[preamble], sep),
        _split(lines[preamble + 1], sep) if units_row else None,
        [_split(s, sep) for s in body],
        newline,
        final or (max_rows is not None and len(lines) > head + max_rows),
    )


def excerpt(path: Path, sep: str, *, preamble: int = 0, units_row: bool = False, max_rows: int | None = None) -> bytes:
    """The first lines of a real file exactly as published (header and ``max_rows`` data lines, line ends kept)."""
    raw = path.read_bytes()
    if max_rows is None:
        return raw
    newline = b"\r\n" if b"\r\n" in raw else b"\r" if b"\r" in raw else b"\n"
    keep = preamble + 1 + int(units_row) + max_rows
    return newline.join(raw.split(newline)[:keep]) + newline


def _cell(text: str, sep: str, quote: bool = False) -> str:
    if quote or sep in text or text.startswith('"'):
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass
class Variant:
    """How a file is written: the published form by default."""

    bom: bool = False
    newline: str | None = None
    trailing: str = ""  # "header": on the preamble, header and units lines; "data": on the data lines; "all": both
    quote_header: bool = False
    extra: bool = False
    reorder: bool = False
    drop: str | None = None  # a column left out (a malformed file)
    bad_cell: tuple[int, str] | None = None  # (data row, column): a value that is not a number
    truncate: int | None = None  # a data row cut off after half of its fields
    names: list[str] = field(default_factory=list)  # filled by render: the column names in file order


def render(layout: Layout, v: Variant) -> bytes:
    """The bytes of ``layout`` written as ``v`` says; ``v.names`` gets the column order written."""
    sep, n = layout.sep, len(layout.rows)
    columns = [
        [name, layout.units[i] if layout.units else None, [row[i] for row in layout.rows]]
        for i, name in enumerate(layout.header)
    ]
    if v.drop is not None:
        columns = [c for c in columns if c[0] != v.drop]
    if v.bad_cell is not None:
        row, name = v.bad_cell
        next(c for c in columns if c[0] == name)[2][row] = BAD_NUMBER
    if v.reorder:  # named columns reversed; unnamed ones (a row index, the basin names) stay where they are
        named = iter([c for c in columns if c[0]][::-1])
        columns = [next(named) if c[0] else c for c in columns]
    if v.extra:
        columns.insert(2, [EXTRA, "-", [("note", "", "12.5")[k % 3] for k in range(n)]])
    v.names[:] = [c[0] for c in columns]
    end = sep if v.trailing in ("header", "all") else ""
    lines = [line + end for line in layout.preamble]
    lines.append(sep.join(_cell(c[0], sep, v.quote_header) for c in columns) + end)
    if layout.units is not None:
        lines.append(sep.join(_cell(c[1], sep, v.quote_header) for c in columns) + end)
    for k in range(n):
        cells = [_cell(c[2][k], sep) for c in columns]
        if k == v.truncate:
            lines.append(sep.join(cells[: len(cells) // 2]))
        else:
            lines.append(sep.join(cells) + (sep if v.trailing in ("data", "all") else ""))
    newline = v.newline or layout.newline
    text = newline.join(lines) + (newline if layout.final_newline else "")
    return (BOM if v.bom else b"") + text.encode("utf-8")


VARIATIONS = {
    "UTF-8 BOM": Variant(bom=True),
    "LF line ends": Variant(newline="\n"),
    "CRLF line ends": Variant(newline="\r\n"),
    "CR line ends": Variant(newline="\r"),
    "trailing delimiter on header and metadata lines": Variant(trailing="header"),
    "trailing delimiter on data lines only": Variant(trailing="data"),
    "trailing delimiter on every line": Variant(trailing="all"),
    "quoted header names": Variant(quote_header=True),
    "extra unknown column": Variant(extra=True),
    "reordered columns": Variant(reorder=True),
    "all at once": Variant(bom=True, newline="\r\n", trailing="all", quote_header=True, extra=True, reorder=True),
}
LINE_ENDS = {"\n": "LF line ends", "\r\n": "CRLF line ends", "\r": "CR line ends"}


# --- the real files of each format ------------------------------------------------------------------------


@functools.cache
def reddyproc_layout() -> Layout:
    """The first 20 days (960 half-hours) of the REddyProc example, as published (tab-separated, CR line ends)."""
    return parse(excerpt(REDDYPROC, "\t", units_row=True, max_rows=960), "\t", units_row=True)


def _tharandt_rows(columns: dict[str, str], qc: set[str]) -> tuple[list[str], list[list[str]]]:
    """The real DE-Tha half-hours (first 10 days) with FLUXNET/AmeriFlux timestamps and the given column names."""
    source = reddyproc_layout()
    index = {name: i for i, name in enumerate(source.header)}
    header = ["TIMESTAMP_START", "TIMESTAMP_END"]
    for name in columns:
        header += [name, f"{name}_QC"] if name in qc else [name]
    rows = []
    for row in source.rows[:480]:
        end = pd.Timestamp(int(row[index["Year"]]), 1, 1) + pd.Timedelta(
            days=float(row[index["DoY"]]) - 1, hours=float(row[index["Hour"]])
        )
        out = [f"{end - pd.Timedelta('30min'):%Y%m%d%H%M}", f"{end:%Y%m%d%H%M}"]
        for name, column in columns.items():
            value = row[index[column]]
            out += [value, "-9999" if value == "-9999" else "0"] if name in qc else [value]
        rows.append(out)
    return header, rows


@functools.cache
def fluxnet_layout() -> Layout:
    """Real DE-Tha half-hours in the FLUXNET2015 FULLSET HH layout (QC 0 where measured, -9999 where missing)."""
    columns = {
        "TA_F": "Tair",
        "SW_IN_F": "Rg",
        "VPD_F": "VPD",
        "RH": "rH",
        "USTAR": "Ustar",
        "TS_F_MDS_1": "Tsoil",
        "LE_F_MDS": "LE",
        "H_F_MDS": "H",
        "NEE_VUT_REF": "NEE",
    }
    header, rows = _tharandt_rows(
        columns, {"TA_F", "SW_IN_F", "VPD_F", "TS_F_MDS_1", "LE_F_MDS", "H_F_MDS", "NEE_VUT_REF"}
    )
    return Layout(",", [], header, None, rows)


@functools.cache
def ameriflux_layout() -> Layout:
    """Real DE-Tha half-hours in the AmeriFlux BASE layout (``# Site:``/``# Version:`` lines, position qualifiers)."""
    columns = {
        "FC": "NEE",
        "H": "H",
        "LE_1_1_1": "LE",
        "TA_1_1_1": "Tair",
        "RH_1_1_1": "rH",
        "SW_IN": "Rg",
        "VPD_PI": "VPD",
        "TS_1": "Tsoil",
        "USTAR": "Ustar",
    }
    header, rows = _tharandt_rows(columns, set())
    return Layout(",", ["# Site: DE-Tha", "# Version: 1-5"], header, None, rows)


@functools.cache
def eco_table_layout() -> Layout:
    """The first 80 overpasses of the ECOSTRESS cal/val table (its first column is an unnamed row index)."""
    return parse(excerpt(ECO_DIR / "combined_eco_flux_EC_filtered.csv", ",", max_rows=80), ",")


@functools.cache
def eco_metadata_layout() -> Layout:
    """The whole tower metadata table (quoted names holding commas, no final line end)."""
    return parse((ECO_DIR / "metadata_ebc_filt.csv").read_bytes(), ",")


@functools.cache
def basin_layout(name: str) -> Layout:
    """The first 25 basins of a basin water-budget table (CRLF; GLEAM's name column is headed "", ITSG's NAME)."""
    return parse(excerpt(BASINS / name, ",", max_rows=25), ",")


@functools.cache
def cardamom_layout(relative: str) -> Layout:
    """A CARDAMOM-FluxVal CSV as published (location table: CRLF, no final line end; validation files: LF)."""
    return parse((CARDAMOM / relative).read_bytes(), ",")


@functools.cache
def ismn_static_layout() -> Layout:
    """ARM-1's ISMN static variables (``;``-separated, a trailing ``;`` on every line, CRLF)."""
    return parse(ARM1_STATIC.read_bytes(), ";")


@dataclass
class Case:
    """One format: its files (written from layouts, or linked as published) and how the reader is called."""

    files: dict[str, Callable[[], Layout]]
    read: Callable[[Path], PointData]
    # the file spoilt by the malformed tests, its data row, a numeric column and a required column
    bad: tuple[str, int, str, str]
    links: dict[str, Path] = field(default_factory=dict)
    first_column_names_missing: bool = False  # a missing required column is reported as the column found instead

    def write(self, folder: Path, v: Variant, bad_file: str | None = None, bad: Variant | None = None) -> dict:
        names = {}
        for relative, layout in self.files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            use = bad if relative == bad_file else v
            path.write_bytes(render(layout(), use))
            names[relative] = list(use.names)
        for relative, target in self.links.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).symlink_to(target)
        return names


CASES = {
    "FLUXNET2015": Case(
        {FLX_NAME: fluxnet_layout},
        lambda d: fluxnet.read(d / FLX_NAME, locations=LOCATIONS),
        bad=(FLX_NAME, 130, "LE_F_MDS", "LE_F_MDS"),
    ),
    "AmeriFlux BASE": Case(
        {AMF_NAME: ameriflux_layout},
        lambda d: ameriflux.read(d / AMF_NAME, locations=LOCATIONS),
        bad=(AMF_NAME, 200, "LE_1_1_1", "TIMESTAMP_END"),
    ),
    "REddyProc": Case(
        {REDDYPROC.name: reddyproc_layout},
        lambda d: reddyproc.read(d / REDDYPROC.name),
        bad=(REDDYPROC.name, 300, "Tair", "LE"),
    ),
    "ECOSTRESS cal/val": Case(
        {"combined_eco_flux_EC_filtered.csv": eco_table_layout, "metadata_ebc_filt.csv": eco_metadata_layout},
        lambda d: ecostress.read(d / "combined_eco_flux_EC_filtered.csv"),
        bad=("combined_eco_flux_EC_filtered.csv", 41, "LE_filt", "LEcorr50"),
    ),
    "basin table (GLEAM)": Case(
        {"ET_GLEAM_monthly.csv": functools.partial(basin_layout, "ET_GLEAM_monthly.csv")},
        lambda d: basins.read(d / "ET_GLEAM_monthly.csv"),
        links={"basins.dbf": BASINS / "basins.dbf"},
        bad=("ET_GLEAM_monthly.csv", 17, "ET_GLEAM 1999-07-15", ""),
        first_column_names_missing=True,
    ),
    "basin table (ITSG)": Case(
        {"TWS_GRACE_ITSG_grid_monthly.csv": functools.partial(basin_layout, "TWS_GRACE_ITSG_grid_monthly.csv")},
        lambda d: basins.read(d / "TWS_GRACE_ITSG_grid_monthly.csv"),
        links={"basins.xlsx": BASINS / "basins.xlsx"},
        bad=("TWS_GRACE_ITSG_grid_monthly.csv", 3, "TWS_GRACE_ITSG_grid 2005-03-15", "NAME"),
        first_column_names_missing=True,
    ),
    "CARDAMOM-FluxVal CSVs": Case(
        {
            "location_fluxnet.csv": functools.partial(cardamom_layout, "location_fluxnet.csv"),
            "validation_data/validation_AR-SLu.csv": functools.partial(
                cardamom_layout, "validation_data/validation_AR-SLu.csv"
            ),
        },
        lambda d: cardamom.read_cardamom_site(d / "cbf_files" / "flux_site_1.cbf"),
        links={"cbf_files/flux_site_1.cbf": CARDAMOM / "cbf_files" / "flux_site_1.cbf"},
        bad=("validation_data/validation_AR-SLu.csv", 3, "GPP", "ET"),
    ),
    "ISMN static variables": Case(
        {ARM1_STATIC.name: ismn_static_layout},
        lambda d: ismn.read(d / ARM1.name),
        links={ARM1.name: ARM1},
        bad=(ARM1_STATIC.name, 13, "value", "quantity_source_name"),
    ),  # CCI 2010 row
}
REAL = {  # the published bytes each layout must reproduce when written without a variation
    "REddyProc": lambda: excerpt(REDDYPROC, "\t", units_row=True, max_rows=960),
    "ECOSTRESS cal/val": lambda: excerpt(ECO_DIR / "combined_eco_flux_EC_filtered.csv", ",", max_rows=80),
    "ECOSTRESS metadata": lambda: (ECO_DIR / "metadata_ebc_filt.csv").read_bytes(),
    "basin table (GLEAM)": lambda: excerpt(BASINS / "ET_GLEAM_monthly.csv", ",", max_rows=25),
    "basin table (ITSG)": lambda: excerpt(BASINS / "TWS_GRACE_ITSG_grid_monthly.csv", ",", max_rows=25),
    "CARDAMOM location table": lambda: LOCATIONS.read_bytes(),
    "CARDAMOM validation file": lambda: (CARDAMOM / "validation_data/validation_AR-SLu.csv").read_bytes(),
    "ISMN static variables": lambda: ARM1_STATIC.read_bytes(),
}
LAYOUT_OF = {
    "REddyProc": reddyproc_layout,
    "ECOSTRESS cal/val": eco_table_layout,
    "ECOSTRESS metadata": eco_metadata_layout,
    "basin table (GLEAM)": functools.partial(basin_layout, "ET_GLEAM_monthly.csv"),
    "basin table (ITSG)": functools.partial(basin_layout, "TWS_GRACE_ITSG_grid_monthly.csv"),
    "CARDAMOM location table": functools.partial(cardamom_layout, "location_fluxnet.csv"),
    "CARDAMOM validation file": functools.partial(cardamom_layout, "validation_data/validation_AR-SLu.csv"),
    "ISMN static variables": ismn_static_layout,
}
# line ends of the published files: a variation that changes nothing is not a test
OWN_LINE_ENDS = {
    "FLUXNET2015": {"\n"},
    "AmeriFlux BASE": {"\n"},
    "REddyProc": {"\r"},
    "ECOSTRESS cal/val": {"\n"},
    "basin table (GLEAM)": {"\r\n"},
    "basin table (ITSG)": {"\r\n"},
    "CARDAMOM-FluxVal CSVs": set(),
    "ISMN static variables": {"\r\n"},
}


def assert_same(got: PointData, want: PointData) -> None:
    """The same stations and observations, value for value and dtype for dtype."""
    pd.testing.assert_frame_equal(got.stations, want.stations, check_exact=True)
    pd.testing.assert_frame_equal(got.observations, want.observations, check_exact=True)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Callable[[str], PointData]:
    """What each reader returns for its files as published (read once per module)."""

    @functools.cache
    def read(case: str) -> PointData:
        folder = tmp_path_factory.mktemp("original")
        CASES[case].write(folder, Variant())
        data = CASES[case].read(folder)
        assert len(data.observations) > 0
        return data

    return read


@pytest.mark.parametrize("name", REAL)
def test_the_rewriter_reproduces_the_published_bytes(name):
    layout = LAYOUT_OF[name]()
    assert render(layout, Variant()) == REAL[name]()
    assert {c for row in layout.rows for c in row} - {""}  # real cells, not an empty table


def _variant_params():
    """(case, variation) pairs; line ends a published file already has are left out (that variant is the original)."""
    for case in CASES:
        for variation, v in VARIATIONS.items():
            if v == Variant(newline=v.newline) and v.newline in OWN_LINE_ENDS[case]:
                continue
            yield pytest.param(case, variation, id=f"{case}-{variation}")


@pytest.mark.parametrize("case, variation", list(_variant_params()))
def test_a_variant_of_a_real_file_reads_like_the_original(tmp_path, original, case, variation):
    CASES[case].write(tmp_path, replace(VARIATIONS[variation], names=[]))
    assert_same(CASES[case].read(tmp_path), original(case))


# --- malformed files: file, line and field named -------------------------------------------------------------

DEFECTS = ("a value that is not a number", "a truncated line", "a missing required column")


@pytest.mark.parametrize("variation", ["as published", "all at once"])
@pytest.mark.parametrize("defect", DEFECTS)
@pytest.mark.parametrize("case", CASES)
def test_a_malformed_file_is_rejected_naming_file_line_and_field(tmp_path, case, defect, variation):
    c = CASES[case]
    bad_file, row, number_column, required = c.bad
    base = Variant() if variation == "as published" else VARIATIONS[variation]
    bad = replace(
        base,
        names=[],
        **{
            DEFECTS[0]: {"bad_cell": (row, number_column)},
            DEFECTS[1]: {"truncate": row},
            DEFECTS[2]: {"drop": required},
        }[defect],
    )
    names = c.write(tmp_path, replace(base, names=[]), bad_file, bad)[bad_file]
    layout = c.files[bad_file]()
    with pytest.raises(ReaderError) as info:
        c.read(tmp_path)
    err = info.value
    assert Path(err.path).name == Path(bad_file).name and str(err).startswith(Path(bad_file).name + ": ")
    if defect == DEFECTS[0]:
        assert (err.line, err.field) == (layout.first_line + row, number_column)
        assert BAD_NUMBER in err.message
    elif defect == DEFECTS[1]:
        cut = names[len(names) // 2]  # the first column the cut line no longer reaches
        assert (err.line, err.field) == (layout.first_line + row, cut), str(err)
    else:
        header_line = len(layout.preamble) + 1
        # a basin table without its name column: the column now first is named
        expected = names[0] if c.first_column_names_missing else required
        assert (err.line, err.field) == (header_line, expected), str(err)
    assert f"line {err.line}" in str(err) and f"field {err.field!r}" in str(err)


# --- ISMN .stm files: whitespace-separated, positional ------------------------------------------------------

STM_VARIATIONS = {
    "UTF-8 BOM": lambda lines, nl: BOM + nl.join(lines) + nl,
    "LF line ends": lambda lines, nl: b"\n".join(lines) + b"\n",
    "CRLF line ends": lambda lines, nl: b"\r\n".join(lines) + b"\r\n",
    "CR line ends": lambda lines, nl: b"\r".join(lines) + b"\r",
    "trailing blanks and tabs": lambda lines, nl: nl.join(line + b"  \t " for line in lines) + nl,
    "all at once": lambda lines, nl: BOM + b"\r\n".join(line + b" \t" for line in lines) + b"\r\n",
}
# file -> (path, lines read, its own line ends: that variation is the original and left out)
STM_FILES = {
    "header+values (SOILSCAPE node505)": (NODE505, 400, "CR line ends"),
    "CEOP separate (SMOSMANIA Narbonne)": (NARBONNE, 400, "CR line ends"),
    "CEOP separate (COSMOS ARM-1)": (ARM1, 400, "CRLF line ends"),
}


def _stm_lines(path: Path, n: int) -> tuple[list[bytes], bytes]:
    raw = path.read_bytes()
    newline = b"\r\n" if b"\r\n" in raw else b"\r" if b"\r" in raw else b"\n"
    return [s for s in raw.split(newline) if s][:n], newline


@pytest.mark.parametrize(
    "stm, variation",
    [pytest.param(stm, v, id=f"{stm}-{v}") for stm in STM_FILES for v in STM_VARIATIONS if v != STM_FILES[stm][2]],
)
def test_an_ismn_variant_reads_like_the_original(tmp_path, stm, variation):
    source, n, _ = STM_FILES[stm]
    lines, newline = _stm_lines(source, n)
    variant = STM_VARIATIONS[variation](lines, newline)
    original = newline.join(lines) + newline
    assert variant != original
    (tmp_path / "original").mkdir()
    (tmp_path / "variant").mkdir()
    (tmp_path / "original" / source.name).write_bytes(original)
    (tmp_path / "variant" / source.name).write_bytes(variant)
    want = ismn.read(tmp_path / "original" / source.name)
    assert len(want.observations) == n - (source == NODE505)
    assert_same(ismn.read(tmp_path / "variant" / source.name), want)


@pytest.mark.parametrize("variation", ["as published", "all at once"])
@pytest.mark.parametrize(
    "defect, line, field",
    [("a value that is not a number", 31, "value"), ("a truncated line", 31, "value"), ("a missing flag", 31, "flag")],
)
def test_a_malformed_ismn_file_is_rejected_naming_file_line_and_field(tmp_path, variation, defect, line, field):
    lines, newline = _stm_lines(NODE505, 200)
    tokens = lines[line - 1].split()
    lines[line - 1] = {
        "a value that is not a number": b"   ".join([*tokens[:2], BAD_NUMBER.encode(), *tokens[3:]]),
        "a truncated line": lines[line - 1][:14],
        "a missing flag": b"   ".join(tokens[:3]),
    }[defect]
    data = newline.join(lines) + newline if variation == "as published" else STM_VARIATIONS[variation](lines, newline)
    path = tmp_path / NODE505.name
    path.write_bytes(data)
    with pytest.raises(ReaderError) as info:
        ismn.read(path)
    assert str(info.value).startswith(f"{NODE505.name}: line {line}: field {field!r}: ")
    assert (info.value.line, info.value.field) == (line, field)


@pytest.mark.parametrize("static", sorted(ISMN.rglob("*_static_variables.csv")), ids=lambda p: p.parent.name)
def test_ismn_static_variables_read_as_the_ismn_package_reads_them(static):
    meta = StaticMetaFile(static.parent, static.name).metadata
    got = ismn.read_static_variables(static)
    assert got["land_cover_cci"] == int(meta["lc_2010"].val) and got["climate_kg"] == meta["climate_KG"].val
    assert got["land_cover"] == ismn.CCI_TO_IGBP[got["land_cover_cci"]]


# --- extra checks of the shared helpers ---------------------------------------------------------------------


def test_a_trailing_delimiter_does_not_hide_a_row_with_a_surplus_value(tmp_path):
    layout = fluxnet_layout()
    v = Variant(trailing="all", names=[])
    text = render(layout, v).decode().split("\n")
    text[9] = text[9] + "0.5"  # line 10: the trailing delimiter followed by a value is one field too many
    path = tmp_path / FLX_NAME
    path.write_text("\n".join(text))
    with pytest.raises(
        ReaderError,
        match=rf"{FLX_NAME}: line 10: expected {len(layout.header)} fields as in the "
        rf"header, found {len(layout.header) + 1}",
    ):
        fluxnet.read(path, locations=LOCATIONS)


def test_a_quoted_ameriflux_metadata_line_with_a_trailing_delimiter_is_read(tmp_path, original):
    layout = replace(ameriflux_layout(), preamble=['"# Site: DE-Tha",,,', '"# Version: 1-5",,,'])
    (tmp_path / AMF_NAME).write_bytes(render(layout, Variant(names=[])))
    assert_same(ameriflux.read(tmp_path / AMF_NAME, locations=LOCATIONS), original("AmeriFlux BASE"))


def test_a_blank_line_at_the_end_of_a_basin_table_is_not_a_basin(tmp_path, original):
    CASES["basin table (GLEAM)"].write(tmp_path, Variant(names=[]))
    path = tmp_path / "ET_GLEAM_monthly.csv"
    path.write_bytes(path.read_bytes() + b"\r\n\r\n")
    assert_same(basins.read(path), original("basin table (GLEAM)"))


def test_a_location_table_with_a_non_numeric_latitude_names_its_line(tmp_path):
    layout = cardamom_layout("location_fluxnet.csv")
    path = tmp_path / "location_fluxnet.csv"
    path.write_bytes(render(layout, Variant(bad_cell=(40, "Lat"), bom=True, names=[])))
    with pytest.raises(ReaderError, match=r"location_fluxnet.csv: line 42: field 'Lat': expected .*'1O.5'"):
        cardamom.read_locations(path)


def test_unknown_columns_shaped_like_another_products_months_are_still_rejected(tmp_path):
    layout = basin_layout("ET_GLEAM_monthly.csv")
    header = list(layout.header)
    header[4] = "ET_FLUXCOM 1980-04-15"
    (tmp_path / "basins.dbf").symlink_to(BASINS / "basins.dbf")
    path = tmp_path / "ET_GLEAM_monthly.csv"
    path.write_bytes(render(replace(layout, header=header), Variant(names=[])))
    with pytest.raises(ReaderError, match=r"line 1: field 'ET_FLUXCOM 1980-04-15': expected a column 'ET_GLEAM "):
        basins.read(path)
