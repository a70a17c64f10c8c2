"""Configuration: errors name the key, the value and what is expected."""

from pathlib import Path

import pytest

from firmware import config


def test_embedded_default_is_simulated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config.embedded_default()
    assert cfg.camera.backend == "simulated"
    assert cfg.gpio.backend == "fake"
    assert cfg.uplink.enabled is False


def test_unknown_key_is_named(tmp_path: Path):
    p = tmp_path / "p.toml"
    p.write_text('[camera]\nbackend = "simulated"\nfsp = 30\n')
    with pytest.raises(config.ConfigError) as err:
        config.load(p)
    assert "camera.fsp" in str(err.value)
    assert "unknown key" in str(err.value)


def test_bad_value_names_key_value_and_expectation(tmp_path: Path):
    p = tmp_path / "p.toml"
    p.write_text('[camera]\nbackend = "webcam"\n[site]\nlatitude = 123\n')
    with pytest.raises(config.ConfigError) as err:
        config.load(p)
    msg = str(err.value)
    assert "camera.backend" in msg and "'webcam'" in msg and "simulated" in msg
    assert "site.latitude" in msg and "123" in msg and "90" in msg


def test_invalid_toml_and_missing_file(tmp_path: Path):
    p = tmp_path / "p.toml"
    p.write_text("[camera\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(p)
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.toml")
