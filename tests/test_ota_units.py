"""The updater's systemd units agree with the code: commands exist, paths match the config defaults."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware import cli
from firmware.config import Config
from ota.updater import Updater

UNITS = Path(__file__).resolve().parent.parent / "image-build" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(UNITS / name)
    return cp


@pytest.mark.parametrize("name", ["polewatch-ota.service", "polewatch-ota-install.service",
                                  "polewatch-ota-recover.service"])
def test_exec_start_is_a_real_ota_command(name):
    argv = shlex.split(_unit(name)["Service"]["ExecStart"])
    assert argv[0] == "/opt/polewatch/base/bin/polewatch"
    ns = cli.build_parser().parse_args(argv[1:])
    assert ns.command == "ota" and callable(ns.func)
    rw = _unit(name)["Service"]["ReadWritePaths"].split()
    cfg = Config()
    assert str(cfg.ota.releases_dir) in rw and str(cfg.device.data_dir) in rw


def test_path_unit_watches_the_request_file_the_app_writes():
    cfg = Config()
    upd = Updater.from_config(cfg, repository_url="https://updates.example/", activation="service")
    assert _unit("polewatch-ota-install.path")["Path"]["PathExists"] == str(upd.request_path)
    assert _unit("polewatch-ota-install.path")["Path"]["Unit"] == "polewatch-ota-install.service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_parse():
    for unit in sorted(UNITS.glob("polewatch-ota*")):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
        problems = [ln for ln in (r.stdout + r.stderr).splitlines()
                    if ln.strip() and "is not executable" not in ln and "polewatch.service" not in ln]
        assert not problems, problems
