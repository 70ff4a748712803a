"""DAP2 (OPeNDAP 2.0) views of an ``xarray.Dataset``: constraint expressions, DDS, DAS and DODS.

Pure code, no Django: :func:`parse_constraint` reads a DAP2 constraint expression and checks it
against the dataset, :class:`DapView` holds what to answer and writes the three responses.

Library choice
--------------
The DAP2 data model and encoders come from ``opendap-protocol`` (MeteoSwiss; the encoder under
xpublish-opendap): the atomic types, ``Dataset``/``Grid``/``Structure``/``Attribute`` text for the
DDS and DAS, and the DODS envelope. It is small, framework-independent and depends only on numpy
and dask. ``pydap``, whose server side is more complete, needs Python >= 3.12 from 3.5.10 on and
brings a WSGI application of its own (WebOb, Jinja2) that would sit awkwardly inside Django; we run
Python 3.11.

Three parts of ``opendap-protocol`` are not used, because they are wrong for real clients:
its constraint parser (it applies the last hyperslab of the whole expression to every variable,
reads ``[start:stride:stop]`` as ``slice(start, stride + 1, stop)``, matches names by prefix and
never rejects anything), its N-d ``Array`` declaration (it writes every array as 1-D, named after
itself) and its XDR writer for ``Byte`` (no padding to 4 bytes). This module parses constraints
strictly (every error names the clause and what is wrong), declares arrays with their named
dimensions, and streams values block by block from the lazily opened file: only the requested
hyperslab is read, about :data:`BLOCK_BYTES` at a time.

What xarray needs to decode (``xarray.open_dataset(url)`` over netCDF-C's DAP2 client)
-------------------------------------------------------------------------------------------
Values are served *encoded as in the file*: each block is passed through
``xarray.conventions.encode_cf_variable`` with the variable's on-disk encoding, so the DAS carries
the same ``_FillValue``, ``missing_value``, ``scale_factor``/``add_offset`` and time ``units`` and
``calendar`` as the NetCDF file, typed like the variable where CF and netCDF-C require it
(``_FillValue``, ``missing_value``, ``valid_*``). DAP2 has no 64-bit integers: int64 times that fit
are served as Int32, other 64-bit integers as Float64; int8 as Int16 (DAP2 ``Byte`` is unsigned).
Global attributes go in ``NC_GLOBAL``, the unlimited dimension in ``DODS_EXTRA``.

References
----------
* OPeNDAP DAP 2.0 specification, ESE-RFC-004.1.2, https://www.earthdata.nasa.gov/esdis/esco/standards-and-practices/data-access-protocol-2
* opendap-protocol, https://github.com/MeteoSwiss/opendap-protocol
* xpublish-opendap 0.2.0 (the xarray-to-DAP mapping this follows), https://github.com/xpublish-community/xpublish-opendap
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import numpy as np
import opendap_protocol as dap
import xarray as xr

BLOCK_BYTES = 8 * 2**20  # values read and encoded per step of a DODS response
INT32 = np.iinfo(np.int32)
# attributes that must have the type of their variable (CF; netCDF-C refuses a _FillValue of another type)
TYPED_LIKE_VARIABLE = ("_FillValue", "missing_value", "valid_min", "valid_max", "valid_range", "actual_range")
DAP_TYPES = {
    np.dtype(t): c
    for t, c in (
        ("f4", dap.Float32),
        ("f8", dap.Float64),
        ("i4", dap.Int32),
        ("u4", dap.UInt32),
        ("i2", dap.Int16),
        ("u2", dap.UInt16),
        ("u1", dap.Byte),
        ("i1", dap.Int16),
        ("bool", dap.Byte),
    )
}
NAME_CHARS = re.compile(r"[^A-Za-z0-9_!~*'\-\"./]")
CLAUSE = re.compile(r"(?P<path>[^\[\]]+)(?P<slabs>(?:\[[^\[\]]*\])*)")
SLAB = re.compile(r"\[([^\[\]]*)\]")


class ConstraintError(ValueError):
    """A constraint expression that is malformed or does not fit the dataset (a 400)."""


def dap_name(name: str) -> str:
    """``name`` as a DAP2 identifier.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        ``name`` with characters outside the DAP2 identifier set escaped as ``%XX`` (UTF-8 bytes).
    """
    return NAME_CHARS.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), str(name))


@dataclass
class Variable:
    """One served variable: its decoded, lazily indexed xarray variable and its DAP2 form."""

    name: str  # the DAP2 name
    variable: xr.Variable  # decoded, lazy
    dims: tuple[str, ...]  # DAP2 names
    type: type[dap.DAPAtom]
    attrs: dict  # encoded (as in the file), for the DAS
    maps: tuple[str, ...] = ()  # served as a Grid with these map variables when not empty
    values: np.ndarray | None = None  # encoded values of an index coordinate (held in memory by xarray)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.variable.shape


@dataclass
class Projection:
    """A parsed constraint: per top-level variable, its hyperslab or the Grid members asked for."""

    slices: dict[str, tuple[slice, ...]] = field(default_factory=dict)  # whole variables (Grids included)
    members: dict[str, dict[str, tuple[slice, ...]]] = field(default_factory=dict)  # Grid name -> member -> slices


def _encode(variable: xr.Variable) -> xr.Variable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SerializationWarning about times: the encoding is the file's own
        return xr.conventions.encode_cf_variable(variable)


def describe(ds: xr.Dataset) -> dict[str, Variable]:
    """The variables of ``ds`` that DAP2 can carry, index coordinates first, in dataset order.

    Reads no values: index coordinates are already in memory, other variables are typed from an empty slice.

    Parameters
    ----------
    ds : xarray.Dataset
        Decoded and lazily opened (see :func:`portal.subsets.services.open_cube`).

    Returns
    -------
    dict
        DAP2 name -> :class:`Variable`. Variables that are not numbers (strings, characters) are left out.
    """
    out: dict[str, Variable] = {}
    names = [n for n in ds.variables if n in ds.dims] + [n for n in ds.variables if n not in ds.dims]
    bounds_of = {ds[d].attrs.get("bounds"): d for d in ds.dims if d in ds.variables}  # bounds name -> its coordinate
    for name in names:
        variable = ds.variables[name]
        index = name in ds.dims and variable.ndim == 1
        probe = _encode(variable if index else variable[tuple(slice(0, 0) for _ in variable.dims)])  # reads nothing
        kind = probe.dtype
        if kind.kind in "iu" and kind.itemsize == 8:
            fits = index and probe.size and INT32.min <= probe.values.min() and probe.values.max() <= INT32.max
            dap_type = dap.Int32 if (fits or (index and not probe.size)) else dap.Float64
        elif kind in DAP_TYPES:
            dap_type = DAP_TYPES[kind]
        else:
            continue
        attrs = dict(probe.attrs)
        if index or name in bounds_of:  # CF 2.5.1 and 7.1: no fill on coordinates and bounds (a store's NaN default)
            attrs.pop("_FillValue", None)
        if name in bounds_of and dap_name(bounds_of[name]) in out:  # CF 7.1: bounds inherit units and calendar
            parent = out[dap_name(bounds_of[name])].attrs
            for key in ("units", "calendar"):
                if key in attrs and str(attrs[key]) == str(parent.get(key)):
                    del attrs[key]
        if "coordinates" in variable.encoding and "coordinates" not in attrs:
            attrs["coordinates"] = variable.encoding["coordinates"]
        out[dap_name(name)] = Variable(
            dap_name(name),
            variable,
            tuple(dap_name(d) for d in variable.dims),
            dap_type,
            attrs,
            values=probe.values if index else None,
        )
    for v in out.values():  # a Grid when every dimension has its own coordinate variable
        if v.values is None and v.dims and all(d in out and out[d].values is not None for d in v.dims):
            v.maps = v.dims
    return out


def _slab(text: str, clause: str, name: str, dim: str, size: int) -> slice:
    parts = [p.strip() for p in text.split(":")]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ConstraintError(
            f"{clause!r}: hyperslab [{text}] of {name!r} must be [i], [start:stop] or "
            "[start:stride:stop] with non-negative integers"
        )
    numbers = [int(p) for p in parts]
    if len(numbers) == 3:
        start, stride, stop = numbers
    else:
        start, stride, stop = numbers[0], 1, numbers[-1]
    if stride < 1:
        raise ConstraintError(f"{clause!r}: the stride of [{text}] must be at least 1")
    if start > stop:
        raise ConstraintError(f"{clause!r}: [{text}] starts after it stops")
    if stop >= size:
        raise ConstraintError(
            f"{clause!r}: [{text}] is outside dimension {dim!r} of {name!r} "
            f"(indices 0 to {size - 1}; DAP2 hyperslabs include their stop)"
        )
    return slice(start, stop + 1, stride)


def _slices(clause: str, slabs: str, name: str, dims: tuple[str, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    texts = SLAB.findall(slabs)
    if not shape and texts:
        raise ConstraintError(f"{clause!r}: {name!r} is a scalar and takes no hyperslab")
    if len(texts) > len(shape):
        raise ConstraintError(
            f"{clause!r}: {len(texts)} hyperslabs for {name!r}, which has {len(shape)} dimensions {list(dims)}"
        )
    given = [_slab(t, clause, name, d, n) for t, d, n in zip(texts, dims, shape, strict=False)]
    return tuple(given) + tuple(slice(0, n, 1) for n in shape[len(given) :])


def parse_constraint(query: str, variables: dict[str, Variable]) -> Projection:
    """Parse the DAP2 constraint expression ``query`` (a URL's query string) against ``variables``.

    Projections are supported: ``var``, ``var[i]``, ``var[start:stop]``, ``var[start:stride:stop]``
    (one per dimension, stop included; missing trailing ones mean whole dimensions), Grid members
    ``grid.member[...]``, and lists of them separated by commas. Selections (``&...``, only useful on
    Sequences) and server functions are refused.

    Parameters
    ----------
    query : str
        The query string, still percent-encoded; empty for the whole dataset.
    variables : dict
        As returned by :func:`describe`.

    Returns
    -------
    Projection
        Empty when the whole dataset is asked for.

    Raises
    ------
    ConstraintError
        The message names the clause and what is wrong with it.
    """
    text = unquote(query).strip()
    projection_text, *selections = text.split("&")
    if any(s.strip() for s in selections):
        raise ConstraintError(
            f"selection {'&' + '&'.join(selections)!r}: selections apply to DAP Sequences, "
            "and this server has none (use hyperslabs: var[start:stride:stop])"
        )
    out = Projection()
    for clause in (c.strip() for c in projection_text.split(",")):
        if not clause:
            if projection_text.strip():
                raise ConstraintError(f"{projection_text!r}: empty item in the comma-separated projection list")
            continue
        if "(" in clause or ")" in clause:
            raise ConstraintError(f"{clause!r}: server functions are not supported")
        match = CLAUSE.fullmatch(clause)
        if not match:
            raise ConstraintError(
                f"{clause!r}: expected name, name[...] or grid.member[...]; hyperslabs go only after the last name"
            )
        path = match["path"].split(".")
        top = variables.get(path[0])
        if top is None:
            raise ConstraintError(f"{clause!r}: no variable {path[0]!r} (variables: {', '.join(variables)})")
        if len(path) == 1:
            slices = _slices(clause, match["slabs"], top.name, top.dims, top.shape)
            if out.slices.get(top.name, slices) != slices:
                raise ConstraintError(f"{clause!r}: {top.name!r} is asked for twice with different hyperslabs")
            out.slices[top.name] = slices
            continue
        members = (top.name, *top.maps)
        if len(path) != 2 or not top.maps or path[1] not in members:
            raise ConstraintError(
                f"{clause!r}: {'.'.join(path[1:])!r} is not a member of {top.name!r}"
                + (f" (members: {', '.join(members)})" if top.maps else " (not a Grid)")
            )
        member = variables[path[1]] if path[1] != top.name else top
        dims = member.dims if path[1] != top.name else top.dims
        slices = _slices(clause, match["slabs"], f"{top.name}.{path[1]}", dims, member.shape)
        asked = out.members.setdefault(top.name, {})
        if asked.get(path[1], slices) != slices:
            raise ConstraintError(f"{clause!r}: {top.name}.{path[1]!r} is asked for twice with different hyperslabs")
        asked[path[1]] = slices
    for name in out.slices:  # a whole Grid includes its members
        out.members.pop(name, None)
    return out


def _length(s: slice) -> int:
    return len(range(s.start, s.stop, s.step))


def _xdr(values: np.ndarray, dap_type: type[dap.DAPAtom]) -> bytes:
    """Values as XDR (big-endian; Byte arrays padded to 4 bytes, 16-bit types as 32 bits)."""
    if dap_type is dap.Byte:
        raw = np.asarray(values).astype("u1").tobytes()
        return raw + b"\0" * (-len(raw) % 4)
    return np.asarray(values).astype(dap_type.str).tobytes()


def stream_values(v: Variable, slices: tuple[slice, ...]) -> Iterator[bytes]:
    """The XDR data of ``v[slices]``, read and encoded about :data:`BLOCK_BYTES` at a time.

    Parameters
    ----------
    v : Variable
    slices : tuple of slice
        One per dimension (positive steps, within bounds).

    Yields
    ------
    bytes
        The DAP2 array header (the length, twice) then the values; a scalar has no header.
    """
    if not v.dims:
        values = _encode(v.variable).values
        yield (np.asarray(values).astype(">i4").tobytes() if v.type is dap.Byte else _xdr(values, v.type))
        return
    n = math.prod(_length(s) for s in slices)
    yield np.array([n, n], dtype=">u4").tobytes()
    if v.values is not None:
        yield _xdr(v.values[slices], v.type)
        return
    part = v.variable[slices]
    row = part.dtype.itemsize * math.prod(part.shape[1:])
    step = max(1, BLOCK_BYTES // max(row, 1))
    for i in range(0, part.shape[0], step):
        yield _xdr(_encode(part[i : i + step]).values, v.type)


class Array(dap.Array):
    """A DAP2 Array with named dimensions whose values stream from a :class:`Variable`."""

    def __init__(self, v: Variable, slices: tuple[slice, ...]):
        super().__init__(name=v.name, dtype=v.type)
        self.v, self.slices = v, slices

    def dds(self, constraint="", slicing=None):
        dims = "".join(f"[{d} = {_length(s)}]" for d, s in zip(self.v.dims, self.slices, strict=True))
        yield f"{self.indent}{self.dtype()} {self.name}{dims};\n"

    def dods_data(self, constraint=""):
        yield from stream_values(self.v, self.slices)


class Grid(dap.Grid):
    """A DAP2 Grid (array and its coordinate maps) streaming from :class:`Variable` objects."""

    def __init__(self, v: Variable, slices: tuple[slice, ...], variables: dict[str, Variable]):
        maps = [Array(variables[m], (s,)) for m, s in zip(v.maps, slices, strict=True)]
        for m in maps:  # opendap-protocol's Grid declaration reads the map lengths from .data
            m.data = np.empty(_length(m.slices[0]), dtype=bool)
        super().__init__(name=v.name, dtype=v.type, dimensions=maps)
        self.v, self.slices = v, slices

    def dods_data(self, constraint=""):
        yield from stream_values(self.v, self.slices)
        for m in self.dimensions:
            yield from m.dods_data()


class Scalar(dap.DAPAtom):
    def __init__(self, v: Variable):
        super().__init__(name=v.name)
        self.v = v

    def __str__(self):
        return self.v.type.__name__

    def dods_data(self, constraint=""):
        yield from stream_values(self.v, ())


def _format(value, dap_type: type[dap.DAPAtom]) -> str:
    if dap_type is dap.String:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    x = np.asarray(value).astype(dap_type.dtype)
    if dap_type in (dap.Float32, dap.Float64):
        if np.isnan(x):
            return "NaN"
        if np.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
    return str(x)


# A String attribute whose value this module quotes and escapes (opendap-protocol adds bare quotes to one value only)
QuotedString = type("String", (dap.String,), {})


def _attribute(name: str, value, variable_type: type[dap.DAPAtom] | None) -> dap.Attribute:
    """A DAS attribute with its DAP2 type; several values are written comma-separated."""
    values = [value] if isinstance(value, str | bytes) else list(np.ravel(np.asarray(value, dtype=object)))
    values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    if variable_type is not None and name in TYPED_LIKE_VARIABLE and variable_type is not dap.String:
        dap_type = variable_type
    elif not values or all(isinstance(v, str) for v in values):
        dap_type = dap.String
    else:
        kind = np.asarray(value).dtype
        if kind.kind == "b" or (kind.kind in "iu" and kind.itemsize == 8):
            dap_type = dap.Int32 if all(INT32.min <= int(v) <= INT32.max for v in values) else dap.Float64
        else:
            dap_type = DAP_TYPES.get(kind, dap.String)
    text = ", ".join(_format(v, dap_type) for v in values) if values else '""'
    return dap.Attribute(name=dap_name(name), value=text, dtype=QuotedString if dap_type is dap.String else dap_type)


class DapView:
    """The DAP2 form of one published file: answers DDS, DAS and DODS requests.

    Parameters
    ----------
    ds : xarray.Dataset
        The file, decoded and lazily opened; it must stay open while responses are written.
    name : str
        The dataset name in the DDS (the file name).
    """

    def __init__(self, ds: xr.Dataset, name: str):
        self.ds, self.name = ds, name
        self.variables = describe(ds)

    def _tree(self, projection: Projection) -> dap.Dataset:
        root = dap.Dataset(name=dap_name(self.name))
        whole = not projection.slices and not projection.members
        for name, v in self.variables.items():
            if whole or name in projection.slices:
                slices = projection.slices.get(name) or tuple(slice(0, n, 1) for n in v.shape)
                if not v.dims:
                    root.append(Scalar(v))
                elif v.maps:
                    root.append(Grid(v, slices, self.variables))
                else:
                    root.append(Array(v, slices))
            elif name in projection.members:  # Grid members only: a Structure, as DAP2 servers answer
                structure = dap.Structure(name=name)
                for member in (name, *v.maps):
                    if member in projection.members[name]:
                        sub = v if member == name else self.variables[member]
                        structure.append(Array(sub, projection.members[name][member]))
                root.append(structure)
        return root

    def size(self, projection: Projection) -> int:
        """Bytes of values a DODS response for ``projection`` carries (before XDR widening)."""

        def nbytes(v, slices):
            return math.prod(_length(s) for s in slices) * v.variable.dtype.itemsize

        whole = not projection.slices and not projection.members
        total = 0
        for name, v in self.variables.items():
            if whole or name in projection.slices:
                total += nbytes(v, projection.slices.get(name) or tuple(slice(0, n, 1) for n in v.shape))
            for member, slices in projection.members.get(name, {}).items():
                total += nbytes(v if member == name else self.variables[member], slices)
        return total

    def dds(self, projection: Projection | None = None) -> str:
        """The Dataset Descriptor Structure, constrained to ``projection`` when given."""
        return "".join(self._tree(projection or Projection()).dds())

    def das(self) -> str:
        """The Data Attribute Structure: every variable's attributes as in the file, ``NC_GLOBAL``, ``DODS_EXTRA``."""
        root = dap.Dataset(name=dap_name(self.name))
        for name, v in self.variables.items():
            container = dap.Structure(name=name)
            container.append(*(_attribute(k, value, v.type) for k, value in v.attrs.items()))
            root.append(container)
        glob = dap.Structure(name="NC_GLOBAL")
        glob.append(*(_attribute(k, value, None) for k, value in self.ds.attrs.items()))
        root.append(glob)
        unlimited = [dap_name(d) for d in self.ds.encoding.get("unlimited_dims", ()) if dap_name(d) in self.variables]
        if unlimited:
            extra = dap.Structure(name="DODS_EXTRA")
            extra.append(_attribute("Unlimited_Dimension", unlimited[0], None))
            root.append(extra)
        return "".join(root.das())

    def dods(self, projection: Projection | None = None) -> Iterator[bytes]:
        """The DODS response: the constrained DDS, a ``Data:`` line, then XDR values streamed block by block."""
        return self._tree(projection or Projection()).dods()


def error_body(code: int, message: str) -> str:
    """A DAP2 error response body.

    Parameters
    ----------
    code : int
        The HTTP status.
    message : str
        What went wrong (quotes and backslashes are escaped).

    Returns
    -------
    str
        ``Error { code = ...; message = "..."; };``
    """
    message = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'Error {{\n    code = {code};\n    message = "{message}";\n}};\n'
