"""Accuracy on every shared validation set, and `polewatch recognize` peak memory.

    python benchmarks/eval_all.py [--datasets ../shared/datasets] [--out results.json] [--config polewatch.toml]
        [--models-dir DIR | --ocr-model FILE | --detector-model FILE] [--split]

Runs `polewatch eval` on us-crops-dev (the validation half: the other half
trains the OCR), crops-ar, scenes-ca (whole, and its hold-out half: the other
half trains the detector and, cut behind it, the OCR), scenes-eu, scenes-br and
scenes-us-speed (labelled by eye here: benchmarks/labels), the validation half read as photos
without `--crop` (each image all plate: its box the whole image), the validation half pasted
into photos (benchmarks/pasted_scenes.py), scenes-ca's hold-out plates cut tight to loose
(benchmarks/crop_framing.py), then
`polewatch recognize --json` over 100 scene images as a child process and
reports its peak RSS. Prints one JSON summary.

`--split` reads only the sets that judge a recipe trained without `--all-us` (the US validation
half, scenes-ca's hold-out, crops-ar), with every plate not read right listed under its set: about
a minute where the whole run takes a quarter of an hour on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import configured  # noqa: E402
from models import DATASETS  # noqa: E402


def linked_subset(src: Path, dst: Path, labels: str, keep, rows_from: Path | None = None) -> Path:
    """A folder of links to the images of `src` whose label row `keep(file)` accepts, with those rows
    (from `src`'s own labels file with benchmarks/labels/fixes.tsv applied, or from `rows_from`: labels
    made here for an unlabelled set)."""
    from models import fixed_plate

    sep = "\t" if labels.endswith(".tsv") else ","
    dst.mkdir(parents=True, exist_ok=True)
    lines = (rows_from or src / labels).read_text().splitlines()
    rows = [lines[0]] + [ln for ln in lines[1:] if keep(ln.split(sep)[0])]
    if rows_from is None:  # the shared labels, with the ones found wrong here put right (benchmarks/labels/fixes.tsv)
        rows = [rows[0]] + [sep.join(f[:-1] + [fixed_plate(src.name, f[0], f[-1])]) for f in (r.split(sep) for r in rows[1:])]
    (dst / labels).write_text("\n".join(rows) + "\n")
    for ln in rows[1:]:
        f = ln.split(sep)[0]
        if not (dst / f).exists():
            os.symlink(src / f, dst / f)
    return dst


def us_val_folder(src: Path, dst: Path) -> Path:
    """us-crops-dev's validation half (the other half trains the OCR)."""
    from models import us_fold

    return linked_subset(src, dst, "labels.csv", lambda f: us_fold(f) == "val")


def as_photos(crops: Path, dst: Path) -> Path:
    """A crops folder (`labels.csv`) as a scene set: links to its images with a `labels.tsv` whose box for each
    is the whole image. `polewatch eval` then reads them as `recognize` without `--crop` reads a photo that
    is all plate (a plate photographed close, a crop given without `--crop`: the plate-filling pass)."""
    import cv2

    dst.mkdir(parents=True, exist_ok=True)
    rows = ["file\tx\ty\tw\th\tplate"]
    for ln in (crops / "labels.csv").read_text().splitlines()[1:]:
        f = ln.split(",")
        img = cv2.imread(str(crops / f[0]), cv2.IMREAD_UNCHANGED)
        if img is None:  # a labelled plate left out would change the set's rate: say which
            raise SystemExit(f"eval_all: {crops / f[0]}: cannot decode, so it cannot be read as a photo")
        rows.append("\t".join([f[0], "0", "0", str(img.shape[1]), str(img.shape[0]), f[-1]]))
        if not (dst / f[0]).exists():
            os.symlink((crops / f[0]).resolve(), dst / f[0])
    (dst / "labels.tsv").write_text("\n".join(rows) + "\n")
    return dst


def ca_holdout_folder(src: Path, dst: Path) -> Path:
    """scenes-ca's hold-out half (neither model trained on it)."""
    from models.detector.data import ca_half

    return linked_subset(src, dst, "labels.tsv", lambda f: ca_half(f) == "holdout")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=Path, default=DATASETS, help="default: POLEWATCH_DATASETS or ../shared/datasets")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--split", action="store_true",
                    help="only the sets no split run trains on (US validation half, scenes-ca hold-out, crops-ar), "
                         "with their misses")
    configured.add_arguments(ap)  # --config, --models-dir, --ocr-model, --detector-model: for every child run
    a = ap.parse_args()
    a.datasets = a.datasets.resolve()  # the links must not depend on the working directory
    extra = ["--config", str(Path(a.config).resolve())] if a.config else []
    cli = [*configured.polewatch_command(), *extra]
    models = configured.load(a).recognition.models_dir  # a candidate folder is made once, here
    if models:  # the children read it as the OTA launcher's slot is read
        os.environ["POLEWATCH_MODELS_DIR"] = str(Path(models).resolve())
    tmp = Path(tempfile.mkdtemp())
    us_val = us_val_folder(a.datasets / "us-crops-dev", tmp / "us-crops-dev-val")
    holdout = ca_holdout_folder(a.datasets / "scenes-ca", tmp / "scenes-ca-holdout")
    if a.split:
        results = [evaluate(cli, s, misses=True) for s in (us_val, holdout, a.datasets / "crops-ar")]
        report(a.out, {"sets": results})
        print("\n".join(map(brief, results)), file=sys.stderr, flush=True)
        return
    sets = [us_val, as_photos(us_val, tmp / "us-crops-dev-val-as-photos"), a.datasets / "crops-ar"]
    sets += [linked_subset(a.datasets / "scenes-ca", tmp / "scenes-ca", "labels.tsv", lambda f: True), holdout]
    sets += [a.datasets / s for s in ("scenes-eu", "scenes-br")]
    sets += [linked_subset(a.datasets / "scenes-us-speed", tmp / "scenes-us-speed", "labels.tsv", lambda f: True,
                           rows_from=ROOT / "benchmarks" / "labels" / "scenes-us-speed.tsv")]
    # first, so that no earlier child's peak is counted (RUSAGE_CHILDREN keeps the largest)
    images = sorted((a.datasets / "scenes-ca").glob("*.jpg"))[:78] + sorted((a.datasets / "scenes-us-speed").glob("*"))[:22]
    subprocess.run([*cli, "recognize", "--json", *map(str, images)], capture_output=True, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = [evaluate(cli, s) for s in sets]
    # the US validation half again, pasted into photos: what the photo path costs a plate
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pasted_scenes.py"), *extra], capture_output=True,
                       text=True, check=True, env=os.environ | {"POLEWATCH_DATASETS": str(a.datasets)})
    photos = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(photos), file=sys.stderr, flush=True)
    # scenes-ca's hold-out plates cut tight to loose, read as `recognize --crop` reads an image
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "crop_framing.py"), *extra], capture_output=True,
                       text=True, check=True, env=os.environ | {"POLEWATCH_DATASETS": str(a.datasets)})
    framing = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(framing), file=sys.stderr, flush=True)
    report(a.out, {"sets": results, "us_val_pasted_into_photos": photos, "ca_holdout_crop_framing": framing,
                   "recognize_100_images_peak_rss_mb": round(peak / 1024, 1)})


def evaluate(cli: list[str], folder: Path, misses: bool = False) -> dict:
    """`polewatch eval` on one folder: its JSON summary (printed to stderr as each set ends), with the
    plates not read right under "misses" when asked for."""
    r = subprocess.run([*cli, "eval", *(["--misses"] if misses else []), str(folder)], capture_output=True,
                       text=True, check=True)
    lines = r.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    if misses:
        result["misses"] = [json.loads(ln)["miss"] for ln in lines[:-1]]  # every line before the summary
    print(json.dumps({k: v for k, v in result.items() if k != "misses"}), file=sys.stderr, flush=True)
    return result


def brief(result: dict) -> str:
    """One set in two lines a person compares candidates by: plates read right of those labelled, detection
    where the set is of scenes, and each miss as truth>read (- for no read)."""
    n = result["labelled"]
    head = f"{result['set']}: exact {round(result['exact_top1'] * n)}/{n} ({result['exact_top1']:.3f})"
    if "detected" in result:
        head += f", detected {result['detected']:.3f}, false/image {result['false_detections_per_image']:.3f}"
    misses = " ".join(f"{m['truth']}>{m.get('plate') or '-'}" for m in result.get("misses", []))
    return f"{head}\n  misses: {misses or 'none'}"


def report(out: Path | None, summary: dict) -> None:
    """The JSON summary on stdout, and in `out` when given."""
    text = json.dumps(summary, indent=2)
    if out:
        out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
