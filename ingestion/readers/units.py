"""UDUNITS units as the portal spells them: the spellings found in files normalised, unknown units refused (no Django).

Used by every gridded reader (through :func:`~.gridtools.finalise`) and by the products that read
units from their inputs.

References
----------
Eaton, B., et al. (2023): NetCDF Climate and Forecast (CF) Metadata Conventions, version 1.11,
section 3.1 (units), https://cfconventions.org/.
UDUNITS-2 unit syntax, https://docs.unidata.ucar.edu/udunits/current/.
"""

from __future__ import annotations

import re

from .base import ReaderError

_BASE_UNITS = {
    "m",
    "g",
    "s",
    "K",
    "Pa",
    "W",
    "J",
    "N",
    "mol",
    "degC",
    "degree",
    "rad",
    "sr",
    "h",
    "d",
    "day",
    "min",
    "hour",
    "L",
    "bar",
    "Hz",
    "ppm",
    "ppb",
    "percent",
    "kelvin",
    "metre",
    "meter",
    "second",
    "year",
    "yr",
    "dB",
}
_PREFIXES = set("kcmMhuGnd")
_WHOLE_UNITS = {"1", "%", "degrees_north", "degrees_east", "degree_north", "degree_east", "degrees_N", "degrees_E"}
# Spellings found in real files -> UDUNITS form used by the portal.
UNIT_ALIASES = {
    "(0 - 1)": "1",
    "0-1": "1",
    "-": "1",
    "unitless": "1",
    "dimensionless": "1",
    "fraction": "1",
    "cm3 cm-3": "m3 m-3",
    "hrs": "h",
    "deg": "degree",
    "degrees": "degree",
    "Kelvin": "K",
    "degree_north": "degrees_north",
    "degree_east": "degrees_east",
}
_TOKEN = re.compile(r"(?P<sym>[A-Za-z%]+)(?P<exp>[-+]?\d+)?")


def _known_symbol(sym: str) -> bool:
    return sym in _BASE_UNITS or (len(sym) > 1 and sym[0] in _PREFIXES and sym[1:] in _BASE_UNITS)


def normalise_units(units) -> str | None:
    """Return ``units`` in the portal's UDUNITS spelling, or None when they are not recognised.

    Parameters
    ----------
    units : str
        Units as found in a file: UDUNITS (``"kg m-2 s-1"``), ECMWF (``"m**3 m**-3"``), with a
        slash (``"cm**3/cm**3"``, ``"W/m^2"``) or one of :data:`UNIT_ALIASES`.

    Returns
    -------
    str or None
        Space-separated ``symbol[exponent]`` tokens (``"m3 m-3"``), ``"1"`` for dimensionless
        quantities, a time unit as is (``"days since 2002-01-01"``), or None when empty/unknown.

    References
    ----------
    CF Conventions 1.11, section 3.1 (units); UDUNITS-2 unit syntax.

    Examples
    --------
    >>> normalise_units("m**3 m**-3"), normalise_units("cm**3/cm**3"), normalise_units("furlongs")
    ('m3 m-3', 'm3 m-3', None)
    """
    if units is None:
        return None
    text = " ".join(str(units).replace("**", "").replace("^", "").split())
    text = UNIT_ALIASES.get(text, text)
    if not text:
        return None
    if text in _WHOLE_UNITS or re.fullmatch(r"[A-Za-z]+ since \d.*", text):
        return UNIT_ALIASES.get(text, text)
    tokens = []
    for i, part in enumerate(text.split("/")):
        for tok in part.split():
            m = _TOKEN.fullmatch(tok)
            if not m or not _known_symbol(m["sym"]):
                return None
            exp = int(m["exp"] or 1) * (-1 if i else 1)
            tokens.append(m["sym"] + ("" if exp == 1 else str(exp)))
    if not tokens:
        return None
    out = " ".join(tokens)
    return UNIT_ALIASES.get(out, out)


def check_units(path, name: str, units) -> str:
    """Normalise the units of variable ``name`` or raise.

    Parameters
    ----------
    path : str or os.PathLike
        File named in the error.
    name : str
        Variable whose ``units`` attribute is checked.
    units : str or None
        The attribute's value.

    Returns
    -------
    str
        Normalised UDUNITS string (see :func:`normalise_units`).

    Raises
    ------
    ReaderError
        Missing, empty or unknown units (``field`` is ``"<name>.units"``).

    References
    ----------
    CF Conventions 1.11, sections 3.1 (units), 4.1-4.4 (latitude, longitude, time); UDUNITS-2.
    """
    out = normalise_units(units)
    if out is None:
        found = "no units attribute" if units is None else f"units {units!r}"
        raise ReaderError(
            path, f"{found}; expected UDUNITS units such as 'K', 'kg m-2 s-1', 'm3 m-3' or '1'", field=f"{name}.units"
        )
    return out
