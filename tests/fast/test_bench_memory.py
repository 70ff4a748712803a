"""The benchmarks' memory helper (tests/bench/memory.py): resident memory of this process and of a child."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.bench import memory


def test_it_reads_this_process_now_and_at_its_peak():
    mine = memory.process_memory(os.getpid())
    assert 0 < mine.rss <= mine.peak
    assert memory.peak_rss_self() >= mine.rss // 2  # same process, two sources (getrusage and /proc)
    assert "peak RSS: this process" in memory.summary([mine])


def test_it_finds_a_running_child_and_its_peak_after_the_child_freed_it():
    code = "b = bytearray(80 * 2**20); del b; import sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); input()"
    child = subprocess.Popen(
        [sys.executable, "-c", code, "bench-memory-probe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "ready\n"
        found = memory.tree("bench-memory-probe")
        assert [p.pid for p in found] == [child.pid]
        assert child.pid in memory.descendants()
        assert found[0].peak >= 80 * 2**20 > found[0].rss  # the high-water mark outlives the freed buffer
    finally:
        child.communicate("\n", timeout=30)


def test_it_says_when_there_is_no_such_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    time.sleep(0.01)
    with pytest.raises(ProcessLookupError, match=str(child.pid)):
        memory.process_memory(child.pid)
