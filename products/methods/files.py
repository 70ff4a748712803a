"""Atomic file output and file checksums shared by ingestion, products and subsets (no Django)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    Readers never see a partial file: the block writes the temporary path (a file, or a folder
    it makes there), which is then moved into place with :func:`os.replace` (a plain file is made
    world-readable first, 0644). On any error the temporary file or folder is removed and an older
    file at ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The target; its folder must exist.

    Yields
    ------
    pathlib.Path
        ``.<name>.<random>.tmp`` in the target's folder (created empty).

    Raises
    ------
    OSError
        The folder does not exist or is not writable; anything the block raises, after cleanup.
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (hashlib)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
