"""The data root: where published files, cube stores, input cubes and job results live.

``settings.DATA_ROOT`` is a local folder (the default, ``var/data``) or an S3-compatible URL
``s3://bucket/prefix`` (through fsspec and s3fs). Every place that reads or writes under the data
root goes through this module, with paths relative to the root (``DatasetFile.path``,
``SubsetJob.result_path``, ``GridFile.cube_path``), so that both backends behave alike:

* :func:`open_dataset` opens a NetCDF lazily. Local: the file itself. S3: an fsspec file with
  HTTP range reads and a block cache (:data:`BLOCK_SIZE`), read by the ``h5netcdf`` engine (the
  netCDF-C library cannot read a Python file object); only the blocks a read touches are fetched.
* :func:`open_zarr` opens a cube store (Zarr v2, consolidated). S3: zarr reads the store's chunks
  straight from the bucket (one GET per chunk).
* :func:`local_path` gives a local file for code that needs one (netCDF4 writers, GDAL, byte-range
  file responses). Local: the file itself. S3: a read-through copy under
  ``<WORK_ROOT>/s3-cache``, keyed by the object's path, size and ETag (published files never
  change, so a copy stays valid), fetched once into a temporary name and moved into place; the least
  recently used copies are deleted beyond ``settings.S3_CACHE_MAX_BYTES`` (:func:`prune_cache`).
* :func:`put_file` and :func:`put_tree` place finished work. Local: an atomic rename (as the
  portal always did). S3: an upload; one object appears whole or not at all (S3 PUT and multipart
  completion are atomic), a tree's Zarr metadata files are uploaded last (a reader that finds a
  store's ``.zmetadata`` finds its chunks), and a tree that failed half-way is deleted again. A
  version's files are only reachable through its database row, which commits after the upload.
* :func:`exists`, :func:`size`, :func:`delete`, :func:`presigned_url` as their names say.

Scratch space (run work directories, temporary answers, map caches, the S3 read-through cache) is
always local: :func:`work_root` (``settings.WORK_ROOT``; by default the data root when it is
local, else ``var/work``).

Settings: ``DATA_ROOT``, ``DATA_ROOT_S3_ENDPOINT_URL`` (an S3-compatible server; default AWS, or
``AWS_ENDPOINT_URL``), ``DATA_ROOT_S3_REGION``; credentials from the standard AWS environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) or the usual
AWS configuration files, as botocore finds them.

References
----------
fsspec, https://filesystem-spec.readthedocs.io/ ; s3fs, https://s3fs.readthedocs.io/ ;
h5netcdf, https://h5netcdf.org/ ; Amazon S3 API reference (PutObject, CompleteMultipartUpload).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path, PurePosixPath

import xarray as xr
from django.conf import settings

logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"
BLOCK_SIZE = 2**21  # bytes fetched per range read of a NetCDF on S3 (the block cache keeps them)
ZARR_METADATA = (".zmetadata", ".zgroup", ".zattrs", ".zarray", "zarr.json")


class StorageError(Exception):
    """A path outside the data root, or an operation the data root cannot do."""


def root() -> str:
    """The data root as configured: a local folder (absolute) or ``s3://bucket/prefix`` (no trailing slash)."""
    value = str(settings.DATA_ROOT)
    return value.rstrip("/") if value.startswith(S3_SCHEME) else str(Path(value))


def is_remote() -> bool:
    """True when the data root is on S3-compatible object storage."""
    return str(settings.DATA_ROOT).startswith(S3_SCHEME)


def work_root() -> Path:
    """The local folder for scratch files: ``settings.WORK_ROOT`` if set, else the data root when it is
    local (work directories are renamed into place on the same file system), else ``var/work``."""
    configured = getattr(settings, "WORK_ROOT", None)
    if configured:
        return Path(configured)
    if is_remote():
        return Path(settings.BASE_DIR) / "var" / "work"
    return Path(settings.DATA_ROOT)


def _relative(relative: str | os.PathLike) -> str:
    """``relative`` as a clean POSIX path inside the root (no ``..``, not absolute)."""
    text = str(relative).replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not parts or text.startswith("/") or ".." in parts:
        raise StorageError(f"{relative!r} is not a path inside the data root")
    return "/".join(p for p in parts if p != ".")


def url(relative: str | os.PathLike) -> str:
    """Where ``relative`` lives: an absolute local path, or ``s3://bucket/prefix/relative``."""
    rel = _relative(relative)
    return f"{root()}/{rel}" if is_remote() else str(Path(root()) / rel)


def storage_options() -> dict:
    """The fsspec (s3fs) options of the data root: endpoint and region from the settings, credentials as
    botocore finds them (AWS environment variables or files). Empty for a local root."""
    if not is_remote():
        return {}
    endpoint = getattr(settings, "DATA_ROOT_S3_ENDPOINT_URL", "") or os.environ.get("AWS_ENDPOINT_URL", "")
    client = {}
    if endpoint:
        client["endpoint_url"] = endpoint
    region = getattr(settings, "DATA_ROOT_S3_REGION", "")
    if region:
        client["region_name"] = region
    return {"client_kwargs": client} if client else {}


@functools.lru_cache(maxsize=8)
def _s3(options_key: str):
    import s3fs  # only a remote data root needs it

    return s3fs.S3FileSystem(**json.loads(options_key), skip_instance_cache=True)


def filesystem():
    """The fsspec file system of the data root (s3fs for ``s3://``, the local one otherwise)."""
    if is_remote():
        return _s3(json.dumps(storage_options(), sort_keys=True))
    import fsspec

    return fsspec.filesystem("file")


def _key(relative: str | os.PathLike) -> str:
    """The s3fs path (``bucket/prefix/relative``) of ``relative``."""
    return url(relative)[len(S3_SCHEME) :]


# --------------------------------------------------------------------------- queries


def exists(relative: str | os.PathLike) -> bool:
    """True when a file (or a folder, a prefix with objects under it) is at ``relative``."""
    if not is_remote():
        return Path(url(relative)).exists()
    return bool(filesystem().exists(_key(relative)))


def is_file(relative: str | os.PathLike) -> bool:
    """True when a file (an object) is at ``relative``."""
    if not is_remote():
        return Path(url(relative)).is_file()
    return bool(filesystem().isfile(_key(relative)))


def size(relative: str | os.PathLike) -> int:
    """Size in bytes of the file at ``relative``.

    Raises
    ------
    FileNotFoundError
        No file there (names the path relative to the root).
    """
    if not is_remote():
        try:
            return Path(url(relative)).stat().st_size
        except FileNotFoundError:
            raise FileNotFoundError(f"{relative} is not in the data root") from None
    return int(_info(relative)["size"])


def _info(relative: str | os.PathLike) -> dict:
    fs = filesystem()
    try:
        info = fs.info(_key(relative), refresh=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{relative} is not in the data root") from None
    if info.get("type") != "file":
        raise FileNotFoundError(f"{relative} is not a file in the data root")
    return info


def version_token(relative: str | os.PathLike) -> tuple:
    """A token that changes when the file at ``relative`` changes: (mtime_ns, size) locally, (ETag, size) on S3.

    Raises
    ------
    FileNotFoundError
        No file there.
    """
    if not is_remote():
        stat = Path(url(relative)).stat()
        return stat.st_mtime_ns, stat.st_size
    info = _info(relative)
    return str(info.get("ETag", "")).strip('"'), int(info["size"])


# --------------------------------------------------------------------------- reading


def open_dataset(relative: str | os.PathLike, **kwargs) -> xr.Dataset:
    """Open the NetCDF at ``relative`` lazily with xarray (``kwargs`` go to :func:`xarray.open_dataset`).

    Local: the file (xarray's default engine, netCDF4). S3: an fsspec file read by ranges of
    :data:`BLOCK_SIZE` bytes with a block cache, through the ``h5netcdf`` engine (NetCDF-4/HDF5
    files only, which is what the portal publishes); closing the dataset closes the file.

    Raises
    ------
    FileNotFoundError
        No file at ``relative``.
    """
    if not is_remote():
        return xr.open_dataset(url(relative), **kwargs)
    handle = filesystem().open(_key(relative), "rb", block_size=BLOCK_SIZE, cache_type="blockcache")
    try:
        ds = xr.open_dataset(handle, engine="h5netcdf", **kwargs)
    except BaseException:
        handle.close()
        raise
    closer = ds._close  # xarray's own closer of the backend; the fsspec file is closed after it

    def close() -> None:
        try:
            if closer is not None:
                closer()
        finally:
            handle.close()

    ds.set_close(close)
    return ds


def zarr_location(relative: str | os.PathLike) -> tuple[str, dict]:
    """What :func:`xarray.open_zarr` needs to open the store at ``relative``: ``(path or URL, storage_options)``."""
    return url(relative), storage_options()


def open_zarr(relative: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Open the cube store (Zarr v2, consolidated) at ``relative`` lazily, CF-decoded.

    ``chunks=None``: lazily indexed arrays (a read fetches only the chunks it touches);
    ``chunks={}``: dask arrays of the store's chunks. On S3 each chunk is one GET.
    """
    location, options = zarr_location(relative)
    return open_zarr_at(location, chunks=chunks, storage_options=options or None)


def open_zarr_at(location: str | os.PathLike, chunks: dict | None = None, storage_options: dict | None = None):
    """Open the cube store (Zarr v2, consolidated metadata) at a local path or URL, CF-decoded: the one
    set of opening options, for :func:`open_zarr` (a store under the data root) and
    :func:`portal.subsets.store.open_store` (a store at any path: builds, tests, benchmarks).

    Returns
    -------
    xarray.Dataset
        Lazy: ``chunks=None`` lazily indexed arrays, ``chunks={}`` dask arrays of the store's chunks.
    """
    return xr.open_zarr(
        location,
        chunks=chunks,
        consolidated=True,
        zarr_format=2,
        mask_and_scale=True,
        storage_options=storage_options,
    )


def local_path(relative: str | os.PathLike) -> Path:
    """A local file with the bytes of the file at ``relative``, for code that needs a real file.

    Local: the file itself. S3: a read-through copy ``<work_root>/s3-cache/<hash>/<relative>``, the
    hash of the path, size and ETag, downloaded once (into a temporary name, then renamed: never half
    there) and reused while the object is unchanged.

    Raises
    ------
    FileNotFoundError
        No file at ``relative``.
    """
    if not is_remote():
        path = Path(url(relative))
        if not path.is_file():
            raise FileNotFoundError(f"{relative} is not a file in the data root")
        return path
    etag, nbytes = version_token(relative)
    rel = _relative(relative)
    digest = hashlib.sha256(f"{root()}/{rel}\0{etag}\0{nbytes}".encode()).hexdigest()[:32]
    cached = work_root() / "s3-cache" / digest / rel  # ends with the relative path (lineage names it so)
    if cached.is_file() and cached.stat().st_size == nbytes:
        os.utime(cached)  # recently used: pruned last
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.{uuid.uuid4().hex[:8]}")
    try:
        filesystem().get_file(_key(relative), str(partial))
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    global _last_prune
    if time.monotonic() - _last_prune >= PRUNE_INTERVAL_SECONDS:
        _last_prune = time.monotonic()
        prune_cache(keep=cached)
    return cached


PRUNE_INTERVAL_SECONDS = 60.0  # a process prunes the read-through copies at most this often (after a download)
_last_prune = float("-inf")


def prune_cache(max_bytes: int | None = None, keep: Path | None = None) -> int:
    """Delete the least recently used read-through copies (:func:`local_path`) until they hold at most
    ``max_bytes`` (default ``settings.S3_CACHE_MAX_BYTES``); ``keep`` is never deleted. Returns how many
    files went. A copy in use by an open file stays readable until closed (POSIX unlink)."""
    limit = settings.S3_CACHE_MAX_BYTES if max_bytes is None else max_bytes
    root = work_root() / "s3-cache"
    if not root.is_dir():
        return 0
    files = []
    for path in root.rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                files.append((stat.st_mtime, stat.st_size, path))
        except FileNotFoundError:  # pruned by another process meanwhile
            continue
    total, gone = sum(size for _, size, _ in files), 0
    for _, size, path in sorted(files, key=lambda item: item[0]):
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        gone += 1
    return gone


def presigned_url(
    relative: str | os.PathLike, expires: int, *, disposition: str = "", content_type: str = ""
) -> str | None:
    """A pre-signed GET URL of the object at ``relative``, valid ``expires`` seconds; None for a local root.

    ``disposition`` and ``content_type`` become the response's ``Content-Disposition`` and
    ``Content-Type`` (S3's ``response-content-disposition`` / ``response-content-type``).
    """
    if not is_remote():
        return None
    params = {}
    if disposition:
        params["ResponseContentDisposition"] = disposition
    if content_type:
        params["ResponseContentType"] = content_type
    return filesystem().url(_key(relative), expires=int(expires), **params)


# --------------------------------------------------------------------------- writing


def put_file(local: str | os.PathLike, relative: str | os.PathLike) -> None:
    """Place the finished local file ``local`` at ``relative`` (replacing any file there), all or nothing.

    Local: renamed into place (``local`` must be on the data root's file system: under
    :func:`work_root`). S3: uploaded (the object appears once complete), then ``local`` is removed.
    """
    local = Path(local)
    if not is_remote():
        target = Path(url(relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)
        return
    filesystem().put_file(str(local), _key(relative))
    local.unlink(missing_ok=True)


def put_tree(local: str | os.PathLike, relative: str | os.PathLike) -> None:
    """Place the finished local folder ``local`` at ``relative``, all or nothing.

    Local: an orphan folder already at ``relative`` (left by a failed publication) is removed and
    ``local`` renamed into place. S3: an orphan prefix is deleted, every file uploaded (the Zarr
    metadata files of the cube stores last, so a store is complete once it can be opened), and the
    local folder removed; if an upload fails, what was uploaded is deleted and the error raised
    (``local`` is kept).
    """
    local = Path(local)
    if not is_remote():
        target = Path(url(relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # left by a run whose commit failed: no row refers to it
            logger.warning("removing orphan directory %s", target)
            shutil.rmtree(target)
        os.replace(local, target)
        return
    rel = _relative(relative)
    if exists(rel):
        logger.warning("removing orphan prefix %s", url(rel))
        delete(rel)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name in ZARR_METADATA)  # stable: data first, metadata last
    fs = filesystem()
    try:
        for path in files:
            fs.put_file(str(path), _key(f"{rel}/{path.relative_to(local).as_posix()}"))
    except BaseException:
        delete(rel)
        raise
    shutil.rmtree(local, ignore_errors=True)


def delete(relative: str | os.PathLike) -> None:
    """Remove the file or folder at ``relative`` (everything under it); nothing there is fine."""
    if not is_remote():
        target = Path(url(relative))
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
        return
    fs = filesystem()
    key = _key(relative)
    try:
        if fs.isdir(key):
            fs.rm(key, recursive=True)
        else:
            fs.rm_file(key)
    except FileNotFoundError:
        pass
    fs.invalidate_cache()


def describe() -> str:
    """One line for the health check: the data root's kind and that a write and delete worked.

    Raises
    ------
    OSError
        The root cannot be written (or the bucket is unreachable).
    """
    probe = f".health-{uuid.uuid4().hex[:12]}"
    if not is_remote():
        base = Path(root())
        path = base / probe
        path.write_bytes(b"")
        path.unlink()
        return f"writable ({base.name}, local disk)"
    fs = filesystem()
    fs.pipe_file(_key(probe), b"")
    fs.rm_file(_key(probe))
    return f"writable ({root()}, S3-compatible object storage)"
