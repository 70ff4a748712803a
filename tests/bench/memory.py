"""Resident memory for the benchmarks: the peak of this process and of its children, and the current and
peak resident set of any process (a live web server or Celery worker) read from ``/proc``.

Linux only (``/proc/<pid>/status``: ``VmRSS`` is the resident set now, ``VmHWM`` its high-water mark since
the process started, so a server's peak needs no sampling while it runs). ``resource.getrusage`` gives the
peak of this process (``RUSAGE_SELF``) and the largest peak among the children it has waited for
(``RUSAGE_CHILDREN``; a child still running is not counted there: read it with :func:`process_memory`).

A spawned or forked child starts from its parent's pages, so a worker's peak includes what it inherited
(copy-on-write pages count in each process that maps them): the figures are upper bounds per process, and a
sum over processes counts shared pages more than once.

Use::

    from tests.bench import memory
    print(memory.summary())                              # this process
    print(memory.summary(memory.tree("gunicorn")))       # plus every gunicorn process below this one

References
----------
proc(5), Linux man-pages: ``/proc/pid/status`` (VmRSS, VmHWM); getrusage(2) (``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20


@dataclass(frozen=True)
class ProcessMemory:
    """Resident memory of one process, in bytes: ``rss`` now and ``peak`` (high-water mark) so far."""

    pid: int
    name: str
    rss: int
    peak: int

    def __str__(self) -> str:
        return f"{self.name}[{self.pid}] {self.rss / MIB:,.0f} MiB now, peak {self.peak / MIB:,.0f} MiB"


def peak_rss_self() -> int:
    """Peak resident set of this process since it started, in bytes (``getrusage(RUSAGE_SELF).ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_children() -> int:
    """Largest peak resident set among the terminated children this process has waited for, in bytes
    (``getrusage(RUSAGE_CHILDREN).ru_maxrss``; 0 when none). Children still running are not included, and a
    child started by fork + exec (``subprocess``) keeps the peak of its forked copy of this process, so its
    figure is at least this process's size at the fork (Linux keeps the high-water mark across exec): read a
    running child with :func:`process_memory` for its own figure."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kib(value: str) -> int:
    number, unit = value.split()
    if unit != "kB":  # proc(5) states kB (KiB) for every Vm* field
        raise ValueError(f"unexpected unit {unit!r} in /proc status")
    return int(number) * 1024


def process_memory(pid: int) -> ProcessMemory:
    """Current (``VmRSS``) and peak (``VmHWM``) resident set of the process ``pid``, in bytes.

    Raises
    ------
    ProcessLookupError
        No such process (it ended, or ``pid`` is wrong); a kernel thread (no resident set) as well.
    """
    try:
        status = _status(pid)
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}") from None
    if "VmRSS" not in status:
        raise ProcessLookupError(f"process {pid} has no resident set (a kernel thread or a zombie)")
    return ProcessMemory(pid, status["Name"].strip(), _kib(status["VmRSS"]), _kib(status["VmHWM"]))


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this process), children first, from ``/proc/<pid>/stat``."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in sorted(children.get(todo.pop(0), [])):
            out.append(child)
            todo.append(child)
    return out


def tree(command_contains: str = "", pid: int | None = None) -> list[ProcessMemory]:
    """:func:`process_memory` of every process below ``pid`` (default: this process) whose command line holds
    ``command_contains`` (e.g. ``"gunicorn"``: the master and its workers; ``"celery"``); processes that end
    while being read are left out."""
    out = []
    for child in descendants(pid):
        if command_contains and command_contains not in _command(child):
            continue
        try:
            out.append(process_memory(child))
        except ProcessLookupError:
            continue
    return out


def summary(others: list[ProcessMemory] | None = None, *, children: bool = False) -> str:
    """One line: this process's peak RSS, with ``children`` the largest waited-for child's (e.g. a load
    generator run as a subprocess; pytest's own helpers count too), then each of ``others``."""
    parts = [f"peak RSS: this process {peak_rss_self() / MIB:,.0f} MiB"]
    if children and peak_rss_children():
        parts.append(f"largest finished child {peak_rss_children() / MIB:,.0f} MiB")
    parts += [str(p) for p in others or []]
    return "; ".join(parts)
