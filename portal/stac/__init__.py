"""The STAC API of the portal at ``/api/stac/`` (SpatioTemporal Asset Catalog, API 1.0, objects 1.1)."""
