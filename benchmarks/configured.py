"""The configuration a benchmark runs under: `--config` (a polewatch.toml) and `--models-dir`.

Shared by the benchmarks that compare firmware settings or model folders side by side, so that
each reads the same two options the same way (the built-in defaults when neither is given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware import config


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", default=None, help="a polewatch.toml to run under (default: the built-in one)")
    ap.add_argument("--models-dir", type=Path, default=None, help="models other than the shipped ones")


def load(args: argparse.Namespace) -> config.Config:
    """A fresh configuration tree from `args` (callers may change it: each call gives a new one)."""
    cfg = config.load(args.config) if args.config else config.Config()
    if args.models_dir:
        cfg.recognition.models_dir = args.models_dir
    return cfg
