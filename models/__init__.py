"""Shipped recognition models (ONNX), their manifest and cards, and the code that makes them."""

import csv
import functools
import hashlib
import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
# The shared training and validation images (never copied into the repository).
DATASETS = Path(os.environ.get("POLEWATCH_DATASETS", MODELS_DIR.parent.parent / "shared" / "datasets"))


def us_fold(name: str) -> str:
    """Fixed split of us-crops-dev: 'train' or 'val' by a hash of the file name (here, without
    PyTorch, so that the benchmarks can score the validation half on an appliance's install)."""
    return "train" if int(hashlib.md5(name.encode()).hexdigest(), 16) % 2 == 0 else "val"


LABEL_FIXES = MODELS_DIR.parent / "benchmarks" / "labels" / "fixes.tsv"


@functools.lru_cache(maxsize=4)
def _read_fixes(path: Path) -> tuple[tuple[str, str, str, str], ...]:
    """(set, file, shared label, plate) rows, read once per file: loaders ask once per labelled row."""
    if not path.exists():
        return ()
    with open(path, newline="") as fh:
        return tuple((r["set"], r["file"], r["label"], r["plate"]) for r in csv.DictReader(fh, delimiter="\t"))


def label_fixes(dataset: str) -> dict[str, tuple[str, str]]:
    """{file: (shared label, plate in the image)} for a shared set's labels found wrong by eye here.

    The shared files stay untouched; training and the benchmarks read the plate through this
    (benchmarks/labels/fixes.tsv says why each one is wrong)."""
    return {f: (label, plate) for s, f, label, plate in _read_fixes(LABEL_FIXES) if s == dataset}


def fixed_plate(dataset: str, file: str, plate: str) -> str:
    """The plate a labelled row should name: the fix where the shared label is the one found wrong."""
    fix = label_fixes(dataset).get(file)
    return fix[1] if fix and fix[0] == plate else plate
