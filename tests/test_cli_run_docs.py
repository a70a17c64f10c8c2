"""docs/configuration.md names every key of the appliance runtime's sections."""

from pathlib import Path

import pytest

from firmware import config

DOC = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
SECTIONS = [config.CameraConfig, config.SimulatedRoadConfig, config.GpioConfig, config.IlluminatorConfig,
            config.PipelineConfig, config.HealthConfig, config.LoggingConfig]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_key_is_documented(cls):
    missing = [k for k in cls.model_fields if f"`{k}`" not in DOC]
    assert missing == []
