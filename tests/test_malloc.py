"""firmware.malloc: after tune(), freed frames go back to the kernel instead of fragmenting the heap."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from firmware import malloc

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    if sys.argv[1] == "tune":
        assert malloc.tune()
    base = rss_mb()
    for _ in range(200):  # three frames allocated and freed at once, a small array allocated between
        frames = [np.ones((720, 1280, 3), np.uint8) for _ in range(3)]
        keep = np.ones(100_000, np.uint8)  # survives the frames it was allocated among
        del frames
    print(rss_mb() - base)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings")
def test_tuned_heap_returns_freed_frames_to_the_kernel():
    grown = float(subprocess.run([sys.executable, "-c", CHILD, "tune"], capture_output=True, text=True,
                                 check=True).stdout)
    assert grown < 3.0  # every frame had its own mapping, unmapped when freed
