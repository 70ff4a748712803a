"""Validate STAC objects offline: pystac's JSON-schema validator with the schemas resolved locally.

pystac fetches the schema of each ``stac_extensions`` URI over the network; this machine (and CI)
has none. :func:`offline_validator` gives a validator whose schema cache holds the STAC 1.1.0 core
schemas pystac ships (``pystac/validation/jsonschemas``) and the extension schemas vendored in
``portal/stac/schemas/<extension>/<version>/schema.json`` (sources in ``schemas/README.md``); any
other URI is an error naming it, never a download.

References
----------
pystac, "Validation" (``pystac.validation.set_validator``, ``JsonSchemaSTACValidator``),
https://pystac.readthedocs.io/en/stable/concepts.html#validation
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pystac.validation
from pystac.validation.stac_validator import GetSchemaError, JsonSchemaSTACValidator

SCHEMAS = Path(__file__).resolve().parent / "schemas"
EXTENSIONS_BASE = "https://stac-extensions.github.io"


def vendored_schemas() -> dict[str, dict[str, Any]]:
    """URI -> schema of every vendored extension schema (``<base>/<name>/<version>/schema.json``)."""
    found = {}
    for path in sorted(SCHEMAS.glob("*/v*/schema.json")):
        name, version = path.parent.parent.name, path.parent.name
        found[f"{EXTENSIONS_BASE}/{name}/{version}/schema.json"] = json.loads(path.read_text(encoding="utf-8"))
    return found


class OfflineValidator(JsonSchemaSTACValidator):
    """A :class:`JsonSchemaSTACValidator` that never downloads: unknown schema URIs raise."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache.update(vendored_schemas())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        key = schema_uri.rstrip("#")
        if key not in self.schema_cache:
            raise GetSchemaError(
                schema_uri,
                LookupError("not vendored: add it under portal/stac/schemas/ (this validator works offline)"),
            )
        return self.schema_cache[key]


def offline_validator() -> OfflineValidator:
    """A new :class:`OfflineValidator`."""
    return OfflineValidator()


def use_offline_validation() -> OfflineValidator:
    """Make pystac validate with an :class:`OfflineValidator` (``pystac.validation.set_validator``)."""
    validator = offline_validator()
    pystac.validation.set_validator(validator)
    return validator


def validate(data: dict[str, Any]) -> list[str]:
    """Validate a STAC object (Item, Collection or Catalog JSON) against core and its extensions.

    Returns
    -------
    list of str
        The schema URIs it was validated against.

    Raises
    ------
    pystac.errors.STACValidationError
        The object breaks a schema (the message names it and the best-matching error).
    """
    return pystac.validation.validate_dict(data, validator=offline_validator())
