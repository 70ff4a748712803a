"""OGC API - Records at ``/api/records/``: the catalogue of dataset records (see :mod:`portal.records.services`)."""
