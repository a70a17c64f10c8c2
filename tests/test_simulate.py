"""`polewatch simulate`: scoring against ground truth, and the end-to-end run once models exist."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.commands.simulate import score
from firmware.recognition import ocr
from firmware.records import PlateRead

ROOT = Path(__file__).resolve().parents[1]
HAVE_MODELS = (ROOT / "models" / "manifest.json").exists()
T = datetime(2026, 1, 1, tzinfo=UTC)


def read(plate, truth, direction="approaching"):
    return PlateRead(plate, 0.9, [], T, T, T, True, (0, 0, 1, 1), b"", b"", direction, 5, truth)


def test_score_counts_correct_duplicates_phantoms_missed_wrong():
    plates = ["AAA111", "BBB222", "CCC333", "DDD444", "EEE555"]
    dirs = dict.fromkeys(plates, "approaching")
    reads = [
        read("AAA111", "AAA111"),  # correct
        read("BBB222", "BBB222"), read("BBB222", "BBB222"),  # duplicate
        read("CCC338", "CCC333", "receding"),  # wrong text, wrong direction
        read("STOP", None),  # phantom
        read("EEE555", "EEE555"),
    ]  # DDD444 missed
    s = score(plates, dirs, reads)
    assert (s["vehicles"], s["reads"], s["correct"], s["duplicates"], s["phantoms"], s["missed"], s["wrong"]) == (
        5, 6, 2, 1, 1, 1, 2)
    assert s["correct_rate"] == 0.4 and s["phantom_rate"] == round(1 / 6, 4) and s["direction_correct"] == 3


def _simulate(*args, cfg=None):
    cmd = [sys.executable, "-m", "firmware.cli"] + (["--config", str(cfg)] if cfg else []) + ["simulate", *args]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=600)


def test_simulate_without_models_says_so(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path}"\n[recognition]\nmodels_dir = "{tmp_path / "none"}"\n')
    p = _simulate("--vehicles", "2", cfg=cfg)
    assert p.returncode == 2 and "recognition unavailable" in p.stderr and "Traceback" not in p.stderr
    p = _simulate("--vehicles", "0", cfg=cfg)
    assert p.returncode == 2 and "--vehicles" in p.stderr


@pytest.mark.skipif(not HAVE_MODELS, reason="models not committed yet (models/manifest.json)")
@pytest.mark.parametrize("night", [False, True], ids=["day", "night"])
def test_simulate_json_contract_end_to_end(tmp_path, night):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path}"\n')
    p = _simulate("--vehicles", "3", "--json", "--seed", "11", *(["--night"] if night else []), cfg=cfg)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    summary, reads = lines[-1], lines[:-1]
    assert summary["vehicles"] == 3 and summary["reads"] == len(reads) and summary["night"] is night
    for k in ("correct", "duplicates", "phantoms", "missed", "frames", "frames_processed"):
        assert isinstance(summary[k], int)
    # one read per pass, none of a non-plate; OCR accuracy is measured by benchmarks/simulate_accuracy.py
    assert summary["duplicates"] == 0 and summary["phantoms"] == 0 and summary["reads"] >= 1
    for r in reads:
        assert set(r) >= {"plate", "confidence", "truth", "correct", "direction", "frames", "candidates"}
        assert r["truth"] is not None and r["frames"] >= 2 and r["confidence"] >= 0.2
    assert summary["correct"] == sum(r["correct"] for r in reads)
    assert summary["missed"] == 3 - len(reads)


def test_the_road_benchmark_runs_several_seeds_and_totals_them_against_the_target() -> None:
    """benchmarks/simulate_accuracy.py --seeds: "1-8", "1,3" or both; the total passes as issue 3 says (99 % of
    vehicles, no duplicate, phantoms at most 0.5 % of the reads)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from simulate_accuracy import passes, seed_list

    assert seed_list("1-4,9") == [1, 2, 3, 4, 9] and seed_list("5") == [5]
    with pytest.raises(ValueError):
        seed_list("one")
    road = {"vehicles": 640, "reads": 640, "correct": 634, "duplicates": 0, "phantoms": 3}
    assert passes(road)
    assert not passes(road | {"correct": 633})
    assert not passes(road | {"duplicates": 1})
    assert not passes(road | {"phantoms": 4})


def test_the_fused_passes_benchmark_keeps_each_pass_and_replays_the_rules_on_it(tmp_path) -> None:
    """benchmarks/fused_passes.py: `dump` runs a road and keeps every pass's fused plate with its vote,
    truth and the text the tracker settled on (it reaches into the tracker, so a change there must keep it
    working); `eval` replays the fused settle rules on what was kept and settles each pass as the run did."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fused_passes.py"
    out = tmp_path / "fused"
    p = subprocess.run([sys.executable, str(script), "dump", "--seeds", "11", "--conditions", "day",
                        "--vehicles", "3", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    with open(out / "seed11-day.pkl", "rb") as f:
        passes = pickle.load(f)
    assert passes, "no pass of three vehicles voted two texts"
    for q in passes:
        assert q["crop"].ndim == 3 and q["probs"].shape[0] == ocr.OCR_W // 4 and q["ranked"] and q["truth"] and q["settled"]
    p = subprocess.run([sys.executable, str(script), "eval", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["passes"] == len(passes)
    assert got["settled_as_the_run"] == len(passes)  # the replay decides each pass as the tracker did
