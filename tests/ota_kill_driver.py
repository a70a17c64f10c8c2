"""Runs one real update in its own process and stops dead at a chosen step, so a test
can SIGKILL it there (tests/test_ota_kill.py). Usage:

    python tests/ota_kill_driver.py POLE_ROOT URL TRUSTED_ROOT PHASE N

It starts the installed application itself (as systemd would), then applies the
newest release; when progress reports PHASE for the N-th time it prints
"AT <phase> <app pgid>" and blocks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ota_support import Pole, wait_healthy  # noqa: E402


def main() -> None:
    root, url, trusted, phase, nth = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    pole = Pole(Path(root), url, Path(trusted), health_timeout_s=float(sys.argv[6]) if len(sys.argv) > 6 else 5)
    start = pole.restarter.start

    def start_and_tell() -> None:
        start()
        print(f"APP {pole.restarter.proc.pid}", flush=True)

    pole.restarter.start = start_and_tell  # type: ignore[method-assign]
    pole.restarter.start()
    assert wait_healthy(pole.health_file, pole.updater.slots.current_version())
    seen = 0

    def progress(p: str, done: int, total: int) -> None:
        nonlocal seen
        if p == phase:
            seen += 1
            if seen == nth:
                print(f"AT {p} {done}/{total}", flush=True)
                while True:
                    time.sleep(60)

    res = pole.updater.apply(progress=progress)
    print(f"DONE {res.outcome} {res.detail}", flush=True)


if __name__ == "__main__":
    main()
