"""Sealing and storing reads with images: reads per second into the outbox.

    .venv/bin/python benchmarks/store_seal.py [--reads 3000] [--batch 1,8,32] [--dir /var/lib/polewatch-bench]

Each read: a plate crop and a 640x480 vehicle JPEG at the store's quality (85),
re-encoded from 64 real scenes-ca photos and their labelled plate boxes when
../shared/datasets is there (plate crops median 2.7 kB, vehicle JPEGs median
74 kB), else from blurred noise (about 5 kB and 94 kB), sealed (X25519 + HKDF + ChaCha20-Poly1305, Ed25519
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
from models import DATASETS  # noqa: E402
from storekit import SITE, jpeg, make_department, make_read, provision_device  # noqa: E402


def real_images(datasets: Path, n: int = 64) -> list[tuple[bytes, bytes]]:
    """(plate crop JPEG, vehicle JPEG) pairs from real scenes-ca photos, quality 85."""
    import csv

    import cv2

    labels = datasets / "scenes-ca" / "labels.tsv"
    if not labels.exists():
        return []
    out = []
    with open(labels, newline="") as fh:
        for row in list(csv.DictReader(fh, delimiter="\t"))[:n]:
            img = cv2.imread(str(datasets / "scenes-ca" / row["file"]))
            if img is None:
                continue
            x, y, w, h = (int(float(row[k])) for k in "xywh")
            crop = img[max(0, y - h // 2): y + h + h // 2, max(0, x - w // 8): x + w + w // 8]
            q = [cv2.IMWRITE_JPEG_QUALITY, 85]
            out.append((cv2.imencode(".jpg", crop, q)[1].tobytes(), cv2.imencode(".jpg", img, q)[1].tobytes()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=3000)
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--datasets", type=Path, default=DATASETS, help="default: POLEWATCH_DATASETS or ../shared/datasets")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pw-store-bench-", dir=args.dir))
    dept = make_department(base / "dept")
    dk = provision_device(base / "keys", "pole-bench", dept)
    from firmware.config import StoreConfig
    from firmware.seal import Sealer

    rng = np.random.default_rng(0)
    images = real_images(args.datasets) or [(jpeg(rng, 160, 80), jpeg(rng, 640, 480))]
    reads = [make_read(f"8BEN{i % 1000:03d}", rng, plate_jpeg=images[i % len(images)][0],
                       vehicle_jpeg=images[i % len(images)][1]) for i in range(256)]
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
        "images": "scenes-ca photos" if len(images) > 1 else "blurred noise",
        "plate_jpeg_bytes_median": int(statistics.median(len(p) for p, _ in images)),
        "vehicle_jpeg_bytes_median": int(statistics.median(len(v) for _, v in images)),
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],
        "dir": str(base),
        "results": results,
        "target_reads_per_s": 1000,
    }, indent=2))


if __name__ == "__main__":
    main()
