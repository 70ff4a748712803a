"""What a product's numbers were made from: the one label every generator, file and summary carries.

Pure Python (no Django, no numpy): the bottom of the import layers, beside the methods.

Generators write it as the ``data_kind`` global attribute of their files, into validation labels
(``"synthetic twin: all stations (pooled)"``), CSV rows and run summaries. :class:`DataKind` is a
:class:`enum.StrEnum`, so a member *is* its string: it compares equal to the stored text, formats as
it in f-strings and is written as it by JSON, pandas and netCDF4 -- the files and rows read exactly
as before the enum existed.
"""

from __future__ import annotations

import enum


class DataKind(enum.StrEnum):
    """The kind of data a product, file or validation row was made from.

    Members
    -------
    REAL : ``"real"``
        Real observations and products (the sample data), processed as the method prescribes.
    SYNTHETIC : ``"synthetic twin"``
        A synthetic twin: made-up inputs with a known answer, shaped like the real ones
        (:mod:`products.generators.twins`); it checks the method, it is not a product.
    PROXY : ``"proxy experiment"``
        Real numbers in proxy roles (e.g. GLDAS soil temperature standing in for a satellite
        freeze/thaw reference where the real reference is not in the sample data).
    """

    REAL = "real"
    SYNTHETIC = "synthetic twin"
    PROXY = "proxy experiment"
