"""Hot-list match time: 100,000 entries (1% partial) against one read's top-5 candidates.

Prints index build time, median and p95 per read for k = 0, 1, 2, and the
entry count. Target (issue 6): <= 5 ms per read with 100,000 entries.
Run: .venv/bin/python benchmarks/hotlist_match.py [--entries N] [--reads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from datetime import datetime, timedelta, timezone

from firmware.hotlist.match import Matcher
from firmware.hotlist.model import Entry

CHARS = string.ascii_uppercase + string.digits


def plate(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.choice((6, 7, 7, 7, 8))))


def partial(rng: random.Random) -> str:
    """A partial plate as officers enter them: one or two unknown characters, or a known start."""
    p = list(plate(rng))
    if rng.random() < 0.3:
        return "".join(p[: rng.randrange(4, len(p))]) + "*"
    for i in rng.sample(range(len(p)), rng.choice((1, 2))):
        p[i] = "?"
    return "".join(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--partial-share", type=float, default=0.01)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(7)
    exp = datetime.now(timezone.utc) + timedelta(days=30)
    n_partial = int(args.entries * args.partial_share)
    entries = [Entry(partial(rng), "stolen_vehicle", f"C{i}", exp) for i in range(n_partial)]
    entries += [Entry(plate(rng), "stolen_vehicle", f"C{i}", exp) for i in range(args.entries - n_partial)]
    listed = [e.pattern for e in entries if not e.partial]
    for k in (0, 1, 2):
        t0 = time.perf_counter()
        m = Matcher(entries, k)
        build = time.perf_counter() - t0
        times, hits = [], 0
        for r in range(args.reads):
            base = rng.choice(listed) if r % 10 == 0 else plate(rng)  # 10% of reads are listed plates
            cands = [(base, 0.9)] + [(plate(rng), 0.1) for _ in range(args.top - 1)]
            t = time.perf_counter()
            hits += bool(m.match(cands))
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(
            f"k={k} entries={len(m)} partial={n_partial} top={args.top} build_s={build:.2f} "
            f"median_ms={statistics.median(times):.3f} p95_ms={times[int(0.95 * len(times))]:.3f} "
            f"max_ms={times[-1]:.3f} reads_with_hits={hits}/{args.reads}"
        )


if __name__ == "__main__":
    main()
