"""Sealing and storing reads with images: reads per second into the outbox.

    .venv/bin/python benchmarks/store_seal.py [--reads 3000] [--batch 1,8,32] [--dir /var/lib/polewatch-bench]

Each read: a 160x80 plate crop and a 640x480 vehicle JPEG (real JPEG bytes,
about 5 kB and 40-60 kB), sealed (X25519 + HKDF + ChaCha20-Poly1305, Ed25519
signature) and committed with synchronous=FULL in WAL mode. `batch` = reads
per commit (1 = each read durable on its own). Prints one JSON summary with
the machine load, because a busy CPU or disk lowers the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from firmware.store import Outbox  # noqa: E402
from storekit import SITE, jpeg, make_department, make_read, provision_device  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=3000)
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pw-store-bench-", dir=args.dir))
    dept = make_department(base / "dept")
    dk = provision_device(base / "keys", "pole-bench", dept)
    from firmware.config import StoreConfig
    from firmware.seal import Sealer

    rng = np.random.default_rng(0)
    plate, vehicle = jpeg(rng, 160, 80), jpeg(rng, 640, 480)
    reads = [make_read(f"8BEN{i % 1000:03d}", rng, plate_jpeg=plate, vehicle_jpeg=vehicle) for i in range(256)]
    results = []
    for batch in [int(b) for b in args.batch.split(",")]:
        db = base / f"outbox-b{batch}.db"
        ob = Outbox(db, StoreConfig(), Sealer.from_keys(dk, "pole-bench"), location=SITE)
        lat: list[float] = []
        t0 = time.perf_counter()
        n = 0
        while n < args.reads:
            t = time.perf_counter()
            with ob.batch():
                for _ in range(batch):
                    ob.add_read(reads[n % len(reads)])
                    n += 1
            lat.append((time.perf_counter() - t) / batch * 1000)
        wall = time.perf_counter() - t0
        ob.close()
        results.append({
            "reads_per_commit": batch,
            "reads": n,
            "reads_per_s": round(n / wall, 1),
            "median_ms_per_read": round(statistics.median(lat), 3),
            "p95_ms_per_read": round(sorted(lat)[int(len(lat) * 0.95)], 3),
            "db_bytes": db.stat().st_size + (Path(str(db) + "-wal").stat().st_size if Path(str(db) + "-wal").exists() else 0),
        })
    print(json.dumps({
        "benchmark": "store_seal",
        "plate_jpeg_bytes": len(plate),
        "vehicle_jpeg_bytes": len(vehicle),
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],
        "dir": str(base),
        "results": results,
        "target_reads_per_s": 1000,
    }, indent=2))


if __name__ == "__main__":
    main()
