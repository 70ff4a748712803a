"""Where and how a pipeline computes its chunked grids: the portal's Dask and compiled-trees settings as generator arguments.

The generators (:mod:`products.generators`) take ``workers`` and ``client`` (see
:func:`products.methods.chunked.run_windows`) and never read settings; the pipelines pass
:func:`grid_compute` ``**`` to them:

* ``DASK_SCHEDULER_ADDRESS`` empty (default): in the Celery worker's own process;
* ``"local"``: a :class:`distributed.LocalCluster` of ``DASK_LOCAL_WORKERS`` worker processes for
  each chunked pass (started and closed by :mod:`products.methods.cluster`);
* any other value: the address of a running Dask scheduler (``tcp://host:8786``).

The worker process of the run stays the only writer of the product files.
"""

from __future__ import annotations

from django.conf import settings

from products.methods.cluster import LOCAL


def grid_compute() -> dict:
    """``{"workers": int, "client": str | None}`` from the settings, for a generator's chunked grid.

    Returns
    -------
    dict
        ``client`` None and ``workers`` 1 (in process), ``client`` ``"local"`` and ``workers``
        ``DASK_LOCAL_WORKERS``, or ``client`` the scheduler address and ``workers`` 1 (ignored: a
        running cluster has its own workers).
    """
    address = str(getattr(settings, "DASK_SCHEDULER_ADDRESS", "") or "").strip()
    if not address:
        return {"workers": 1, "client": None}
    if address == LOCAL:
        return {"workers": max(1, int(getattr(settings, "DASK_LOCAL_WORKERS", 2))), "client": LOCAL}
    return {"workers": 1, "client": address}


def tree_options() -> dict:
    """``{"compiled_trees": bool, "trees_cache": path}`` from ``GENERATION_COMPILED_TREES`` and
    ``GENERATION_TREES_CACHE``, for :func:`products.generators.et_grid.predict_et_grid`."""
    return {
        "compiled_trees": bool(getattr(settings, "GENERATION_COMPILED_TREES", False)),
        "trees_cache": getattr(settings, "GENERATION_TREES_CACHE", None),
    }
