"""Time from update trigger to a healthy new release, 30 MB bundle, loopback HTTP.

Builds a real TUF repository (2-of-3 root), serves it on 127.0.0.1, installs
release 1.0.0 and starts it as a supervised process, then for each run
publishes a new release carrying a 30 MB model and times `Updater.apply()`:
TUF refresh, resumable download, hash verification, staging into the inactive
slot, switch, restart of the application, health gate. Prints per-phase
medians. Also times one rollback of a release that never turns healthy.

    .venv/bin/python benchmarks/ota_update.py [--runs 5] [--mb 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ota_support import Pole, RepoEnv, make_bundle, wait_healthy  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=float, default=30.0)
    ap.add_argument("--rollback-timeout", type=float, default=5.0)
    args = ap.parse_args()
    size = int(args.mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="ota-bench-") as d:
        tmp = Path(d)
        env = RepoEnv(tmp)
        pole = Pole(tmp / "pole", env.url, env.trusted_root, health_timeout_s=60)
        try:
            pole.factory_install(make_bundle(tmp, "1.0.0"))
            rows = []
            for i in range(args.runs):
                version = f"1.{i + 1}.0"
                bundle = env.publish(version, model_bytes=size)
                bundle_bytes = bundle.stat().st_size
                t0 = time.perf_counter()
                res = pole.updater.apply()
                total = time.perf_counter() - t0
                if res.outcome != "installed" or not wait_healthy(pole.health_file, version, 5):
                    print(f"run {i}: {res.outcome} {res.detail}", file=sys.stderr)
                    return 1
                t = res.timings
                rows.append({"total": total, "check": t["check_s"], "download": t["download_s"],
                             "stage": t["stage_s"], "restart_to_healthy": t["restart_to_healthy_s"],
                             "mbps": bundle_bytes / 1e6 / t["download_s"]})
                print(f"run {i + 1}: {version} {bundle_bytes / 1e6:.1f} MB installed in {total:.2f} s "
                      f"(check {t['check_s']:.2f}, download {t['download_s']:.2f}, stage {t['stage_s']:.2f}, "
                      f"restart->healthy {t['restart_to_healthy_s']:.2f})")
                bundle.unlink()
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"\nmedian of {len(rows)} runs, {args.mb:g} MB bundle on loopback:")
            print(f"  trigger -> healthy new release  {med['total']:.2f} s  "
                  f"(min {min(r['total'] for r in rows):.2f}, max {max(r['total'] for r in rows):.2f})")
            print(f"  check (TUF refresh)             {med['check']:.3f} s")
            print(f"  download + TUF hash             {med['download']:.2f} s  ({med['mbps']:.0f} MB/s)")
            print(f"  verify manifest + stage slot    {med['stage']:.2f} s")
            print(f"  switch + restart + health gate  {med['restart_to_healthy']:.2f} s")

            # a release that never turns healthy: time to be back on the previous one
            pole.updater.health_timeout_s = args.rollback_timeout
            bad = env.publish("9.0.0", mode="unhealthy")
            t0 = time.perf_counter()
            res = pole.updater.apply()
            rb = time.perf_counter() - t0
            back = pole.updater.slots.current_version()
            print(f"  unhealthy release rolled back   {rb:.2f} s with health_timeout_s={args.rollback_timeout:g} "
                  f"(outcome {res.outcome}, running {back})")
            bad.unlink()
        finally:
            pole.stop()
            env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
