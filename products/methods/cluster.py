"""Dask distributed clients for the chunked grid path: a local cluster or a scheduler address (no Django).

:func:`products.methods.chunked.apply_chunked` runs its windows as tasks on a ``dask.distributed``
cluster when it is given one. This module turns what the caller has into a
:class:`distributed.Client` for the length of one run and closes what it opened on every path:

* ``"local"`` (:data:`LOCAL`): a :class:`distributed.LocalCluster` on this host, started for the run
  and closed after it (success, error or interrupt);
* any other string: the address of a running scheduler (``tcp://host:8786``), e.g. the portal's
  ``DASK_SCHEDULER_ADDRESS`` setting, read by the caller and passed in (this module never imports
  Django). The client is closed after the run; the cluster is not (it is not ours);
* a :class:`distributed.Client`: used as it is and left open (its owner closes it).

``distributed`` is imported only when a cluster is asked for, so the in-process path does not
load it.

References
----------
Dask distributed documentation, https://distributed.dask.org/ (``LocalCluster``, ``Client.scatter``,
``Client.submit``, ``as_completed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

LOCAL = "local"
"""The ``client`` value that starts a :class:`distributed.LocalCluster` for one run."""


@contextmanager
def local_client(
    n_workers: int = 1,
    *,
    threads_per_worker: int = 1,
    processes: bool = True,
    **options: Any,
) -> Iterator[Client]:
    """A :class:`distributed.LocalCluster` and its client, both closed when the block ends.

    Parameters
    ----------
    n_workers : int
        Worker processes (or threads of this process with ``processes=False``).
    threads_per_worker : int
        Threads per worker; 1 keeps one window per worker at a time (the model's own threads,
        e.g. LightGBM's ``n_jobs``, come on top).
    processes : bool
        True (default): workers are separate processes, so reading inputs (netCDF/HDF5, not
        thread-safe in general) never runs concurrently in one process. False: workers are threads
        of this process (cheap to start; for ``features`` that touch no netCDF/HDF5, e.g. tests).
    **options
        Further :class:`distributed.LocalCluster` arguments. The dashboard is off unless
        ``dashboard_address`` is given (no port taken on a shared host).

    Yields
    ------
    distributed.Client
        Connected to the new cluster.

    Raises
    ------
    ValueError
        ``n_workers`` or ``threads_per_worker`` below 1.
    ImportError
        ``distributed`` is not installed.
    """
    if n_workers < 1 or threads_per_worker < 1:
        raise ValueError(f"n_workers and threads_per_worker must be >= 1, found {n_workers}, {threads_per_worker}")
    from distributed import Client, LocalCluster

    options.setdefault("dashboard_address", None)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes, **options)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@contextmanager
def connect(client: Client | str, *, n_workers: int = 1) -> Iterator[Client]:
    """The client of one run: a Client as given, a new local cluster, or a client of an address.

    Parameters
    ----------
    client : distributed.Client or str
        A client (yielded as it is, not closed here), :data:`LOCAL` (a local cluster of
        ``n_workers`` worker processes, one thread each, closed after the block, see
        :func:`local_client`) or a scheduler address such as ``"tcp://10.0.0.5:8786"`` (a client
        closed after the block; the cluster keeps running).
    n_workers : int
        Workers of a :data:`LOCAL` cluster; ignored otherwise (a running cluster has its own).

    Yields
    ------
    distributed.Client

    Raises
    ------
    TypeError
        ``client`` is neither a string nor a :class:`distributed.Client`.
    ValueError
        An empty address.
    OSError
        The scheduler at the address cannot be reached (``distributed``'s timeout).
    """
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if not isinstance(client, str):
        raise TypeError(f"client must be a distributed.Client, {LOCAL!r} or a scheduler address, found {client!r}")
    if client == LOCAL:
        with local_client(n_workers) as opened:
            yield opened
        return
    if not client.strip():
        raise ValueError("client: empty scheduler address")
    opened = Client(client, set_as_default=False)
    try:
        yield opened
    finally:
        opened.close()


def total_threads(client: Client) -> int:
    """Threads of all the workers connected to ``client`` now (at least 1)."""
    return max(1, sum(client.nthreads().values()))
