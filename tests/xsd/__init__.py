"""XML schemas the tests validate against (vendored, see README.md), loaded once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import xmlschema

HERE = Path(__file__).parent
DATACITE_KERNEL = "http://datacite.org/schema/kernel-4"


@cache
def datacite_schema() -> xmlschema.XMLSchema10:
    """DataCite Metadata Schema kernel-4.5 (``resource``)."""
    return xmlschema.XMLSchema10(HERE / "datacite-kernel-4.5" / "metadata.xsd")


@cache
def oai_schema() -> xmlschema.XMLSchema10:
    """OAI-PMH 2.0 responses, with the schemas of what they carry: ``oai_dc`` (and Simple DC),
    DataCite's OAI wrapper ``oai_datacite`` 1.1 and the DataCite kernel-4.5 ``resource`` in it."""
    schema = xmlschema.XMLSchema10(HERE / "oai-pmh" / "OAI-PMH.xsd", build=False)
    schema.import_schema("http://www.openarchives.org/OAI/2.0/oai_dc/", str(HERE / "oai-pmh" / "oai_dc.xsd"))
    schema.import_schema("http://schema.datacite.org/oai/oai-1.1/", str(HERE / "oai-pmh" / "oai_datacite-1.1.xsd"))
    schema.import_schema(DATACITE_KERNEL, str(HERE / "datacite-kernel-4.5" / "metadata.xsd"))
    schema.build()
    return schema
