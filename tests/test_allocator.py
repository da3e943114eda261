"""qabot.models.allocator: free heap memory goes back to the system (in a fresh process: the
heap is process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")

# 160 MiB in 64 KiB blocks (below glibc's mmap threshold: from the heap), all freed but the
# last, which keeps the heap's top in place: the freed pages stay in the process until trimmed.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from qabot.models.allocator import release_free_memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    base = rss_mb()
    blocks = [libc.malloc(64 << 10) for _ in range(2560)]
    for block in blocks:
        ctypes.memset(block, 1, 64 << 10)
    for block in blocks[:-1]:
        libc.free(block)
    freed = rss_mb() - base
    released = release_free_memory() if sys.argv[1] == "release" else None
    print(freed, rss_mb() - base, released)
""")


def _probe(mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_freed_heap_memory_stays_in_the_process_until_released() -> None:
    freed, after, released = _probe("keep")
    assert int(freed) > 120 and int(after) > 120 and released == "None"
    freed, after, released = _probe("release")
    assert int(freed) > 120 and int(after) < 20 and released == "True"
