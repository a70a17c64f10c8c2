"""The shipped example configurations must validate against the config tree."""

from pathlib import Path

import pytest

from firmware import config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


def test_both_examples_are_shipped():
    assert {p.name for p in EXAMPLES} >= {"fixed-pole.toml", "special-event.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    cfg = config.load(path)
    assert cfg.device.id and cfg.camera.backend != "simulated"


def test_special_event_uses_the_event_location():
    cfg = config.load(next(p for p in EXAMPLES if p.name == "special-event.toml"))
    assert cfg.event is not None and cfg.illuminator.mode == "sun" and cfg.camera.source.startswith("rtsp://")
    cfg = config.load(next(p for p in EXAMPLES if p.name == "fixed-pole.toml"))
    assert cfg.event is None and cfg.camera.backend == "picamera2" and cfg.camera.sensor_crop is not None
