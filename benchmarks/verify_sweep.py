"""How the verification band's rules trade recall for false detections, on every scene set.

    python benchmarks/verify_sweep.py [--floor 0.25] [--out band.json]

Detections scoring between `--floor` and the detector threshold are read once
(second look included, as the appliance reads them) and each is marked a plate
(it matches a labelled box) or not. Then each candidate rule, in the same run,
is applied to the same reads: detected and false detections per image for each
set, as `polewatch eval` counts them (one detection per labelled box). This is
where the `recognition.verify_*` defaults come from (docs/recognition.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.eval_all import ca_holdout_folder, linked_subset  # noqa: E402
from firmware.config import RecognitionConfig  # noqa: E402
from firmware.evaluation import load_labels, matches  # noqa: E402
from firmware.imageio import read_image  # noqa: E402
from firmware.recognition import Recognizer  # noqa: E402
from firmware.records import PlateResult  # noqa: E402
from models import DATASETS  # noqa: E402


@dataclass
class Seen:
    """One read detection of one image, and the labelled box it matches, if any."""
    image: str
    truth: int | None
    result: PlateResult


def collect(rec: Recognizer, folder: Path, floor: float) -> tuple[list[Seen], int, int]:
    """Every detection at or above `floor` in a scene folder, read as the appliance reads it;
    and (images, plates)."""
    _, labels = load_labels(folder)
    seen: list[Seen] = []
    plates = 0
    for name in tqdm(sorted(labels), desc=folder.name, mininterval=5):
        truths = labels[name]
        plates += len(truths)
        for r in rec.candidates(read_image(folder / name), floor):
            match = next((k for k, t in enumerate(truths) if matches(r.box, t.box)), None)
            seen.append(Seen(name, match, r))
    return seen, len(labels), plates


def tally(seen: list[Seen], images: int, plates: int, choose) -> dict:
    """Detected share and false detections per image when `choose(reads of one image)` decides
    what is kept (`Recognizer.choose`, as `read_frame` keeps them)."""
    by_image: dict[str, list[Seen]] = {}
    for s in seen:
        by_image.setdefault(s.image, []).append(s)
    kept = []
    for group in by_image.values():
        chosen = {id(r) for r in choose([s.result for s in group])}
        kept += [s for s in group if id(s.result) in chosen]
    found = {(s.image, s.truth) for s in kept if s.truth is not None}
    # as in evaluation: one kept detection per labelled box counts, the others are false
    false = len(kept) - len(found)
    return {"detected": round(len(found) / plates, 3), "false_per_image": round(false / images, 3)}


def rules() -> dict[str, dict]:
    """Candidate settings of the band (updates to the default RecognitionConfig), the defaults first."""
    out: dict[str, dict] = {"defaults": {}, "no char rule": {"verify_char_confidence": None}}
    for cc in (0.8, 0.9, 0.95):
        out[f"char rule at {cc}"] = {"verify_char_confidence": cc}
    for floor in (0.25, 0.35):
        out[f"band floor {floor}"] = {"verify_threshold": floor}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    cfg = RecognitionConfig()
    rec = Recognizer.from_config(cfg, stills=True)  # as `polewatch eval` reads them
    tmp = Path(tempfile.mkdtemp())
    sets = [ca_holdout_folder(DATASETS / "scenes-ca", tmp / "scenes-ca-holdout"),
            DATASETS / "scenes-eu", DATASETS / "scenes-br",
            linked_subset(DATASETS / "scenes-us-speed", tmp / "scenes-us-speed", "labels.tsv", lambda f: True,
                          rows_from=ROOT / "benchmarks" / "labels" / "scenes-us-speed.tsv")]
    collected = {s.name: collect(rec, s, a.floor) for s in sets}
    table = {}
    for name, update in rules().items():
        rec.cfg = cfg.model_copy(update=update)
        table[name] = {k: tally(seen, n_img, n_pl, rec.choose) for k, (seen, n_img, n_pl) in collected.items()}
        print(name, json.dumps(table[name]))
    rec.cfg = cfg
    band = {k: [{"image": s.image, "truth": s.truth, "plate": s.result.plate, "score": s.result.detection_score,
                 "confidence": s.result.confidence, "char_confidence": s.result.char_confidence}
                for s in seen if s.result.detection_score < rec.threshold] for k, (seen, _, _) in collected.items()}
    if a.out:
        a.out.write_text(json.dumps({"rules": table, "band": band}, indent=1))


if __name__ == "__main__":
    main()
