"""glibc heap settings for a long-running process that handles multi-megabyte frames.

A 1280x720 frame is 2.7 MB, and it and its grey and letterboxed copies are freed
within milliseconds. After such frees glibc raises its mmap threshold (the
dynamic threshold, up to 32 MB), so later frames come from the heap; with one
heap arena per thread (capture, recognition, uplink) the heaps fragment and RSS
creeps up (294 -> 311 MB over a 30-minute live run). A fixed threshold gives
every frame its own mapping, returned to the kernel when freed, and two arenas
bound the rest (with no vehicle in view the same run then held 268.6 MB from
minute 10 to minute 28; docs/appliance.md).
`tune()` must run before the threads start; it is a no-op where libc is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8


def tune(mmap_threshold: int = 128 * 1024, arena_max: int = 2) -> bool:
    """Fix glibc's mmap threshold and cap its arenas; True when both took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_ARENA_MAX, arena_max) == 1
    if not ok:
        log.info("mallopt refused the heap settings (not glibc?): memory may creep on long runs")
    return ok
