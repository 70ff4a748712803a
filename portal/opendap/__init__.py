"""OPeNDAP (DAP2) access to the NetCDF grids of published versions (``/opendap/``).

Built on ``opendap-protocol`` (see :mod:`portal.opendap.dap` for why it and not pydap or xpublish).
"""
