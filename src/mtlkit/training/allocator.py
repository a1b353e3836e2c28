"""The C allocator's settings for tensor work (glibc on Linux).

glibc's ``malloc`` hands every block above a dynamic threshold (128 KiB at first) back to the
system when it is freed, and trims its heap whenever 128 KiB lie free at the top. A forward
pass allocates and frees its activations, megabytes each, at every batch, so each batch
page-faults its buffers in afresh: prediction of the census MMoE ran 2.2-2.3x faster per
thread once freed memory stayed in the heap (batches of 1,024-4,096 rows; BENCHMARKS.md).
PyTorch's performance guide recommends a caching allocator (jemalloc, tcmalloc) for the
same reason; these two settings give the effect without one.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

#: ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's own ceiling for the dynamic threshold).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap before it is given back.
TRIM_THRESHOLD = 256 << 20
#: Environment variables that mean the user has chosen the allocator's settings.
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (the thresholds above); once per process.

    Returns whether the settings were applied: not on other C libraries or systems, and not
    where the user has chosen (a ``MALLOC_*_`` variable, glibc malloc tunables, or another
    allocator preloaded): setting any of those opts out.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    if "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if any(name in os.environ.get("LD_PRELOAD", "") for name in _OTHER_ALLOCATORS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # The mmap threshold first: setting it fixes both thresholds (no more dynamic ones).
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
