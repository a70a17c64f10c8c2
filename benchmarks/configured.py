"""The configuration a benchmark runs under: `--config` (a polewatch.toml), `--models-dir`, and
`--ocr-model` / `--detector-model` (a trained candidate read in place of one shipped model).

Shared by the benchmarks that compare firmware settings or model folders side by side, so that
each reads the same options the same way (the built-in defaults when none is given).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from firmware import config

ROOT = Path(__file__).resolve().parents[1]  # the checkout this benchmark belongs to


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", default=None, help="a polewatch.toml to run under (default: the built-in one)")
    ap.add_argument("--models-dir", type=Path, default=None, help="models other than the shipped ones")
    ap.add_argument("--ocr-model", type=Path, default=None,
                    help="a candidate OCR file read in place of the models folder's (models.manifest_tool.candidate)")
    ap.add_argument("--detector-model", type=Path, default=None, help="a candidate detector file, likewise")


def polewatch_command() -> list[str]:
    """`polewatch` as this checkout's firmware runs it, for a benchmark's child runs. The console script on
    PATH is the one the virtual environment installed, editable, from the main checkout: run from a second
    worktree (a candidate OCR at another input size), a benchmark would measure the main checkout's firmware
    and preprocessing with the candidate's model (session 36: a 192-wide OCR fed 128-wide crops failed)."""
    boot = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from firmware.cli import main; sys.exit(main())"
    return [sys.executable, "-c", boot]


def load(args: argparse.Namespace) -> config.Config:
    """A fresh configuration tree from `args` (callers may change it: each call gives a new one)."""
    cfg = config.load(args.config) if args.config else config.Config()
    if args.models_dir:
        cfg.recognition.models_dir = args.models_dir
    if args.ocr_model or args.detector_model:
        from firmware.recognition import default_models_dir

        base = Path(cfg.recognition.models_dir or default_models_dir()).resolve()
        cfg.recognition.models_dir = _candidate(base, args.ocr_model, args.detector_model)
    return cfg


@lru_cache(maxsize=None)
def _candidate(base: Path, ocr: Path | None, detector: Path | None) -> Path:
    """The candidate folder for these files, made once per process however often `load` is called (a
    benchmark loads a fresh configuration per road or condition)."""
    from models.manifest_tool import candidate

    swaps = {name: f for name, f in (("ocr", ocr), ("detector", detector)) if f}
    return candidate(Path(tempfile.mkdtemp(prefix="pw-candidate-")), swaps, base)
