"""GPIO: the fake's timeline and state file; vendor backends checked at their API boundary."""

from __future__ import annotations

import sys
import types

import pytest

from drivers.gpio import FakeGpio, GpioError, GpioUnavailable, open_gpio
from firmware.config import GpioConfig


def test_fake_records_timeline_and_persists_state(tmp_path):
    state = tmp_path / "gpio.json"
    g = FakeGpio(state_file=state)
    g.setup_output(18)
    pwm = g.pwm(18, 1000)
    pwm.set_duty(0.6)
    g.write(18, True)
    assert [e.what for e in g.history(18)] == ["setup_output", "pwm_start", "duty", "write"]
    assert FakeGpio.read_state(state)[18] == {"mode": "out", "value": True, "duty": 0.6}
    # a second process opening the same board sees and changes the same pins
    other = FakeGpio(state_file=state)
    other.write(18, False)
    assert FakeGpio.read_state(state)[18]["value"] is False


def test_fake_refuses_misuse():
    g = FakeGpio(pwm_pins={12})
    with pytest.raises(GpioError, match="not set up as an output"):
        g.write(5, True)
    g.setup_output(5)
    with pytest.raises(GpioError, match="cannot do PWM"):
        g.pwm(5, 1000)
    g.setup_output(12)
    with pytest.raises(GpioError, match="outside 0..1"):
        g.pwm(12, 100).set_duty(1.5)
    with pytest.raises(GpioError, match="before setup"):
        g.read(7)
    g.setup_input(7)
    g.set_input(7, True)
    assert g.read(7) is True


def _vendor_module(calls: list):
    m = types.ModuleType("GPIO")
    m.BCM, m.BOARD, m.OUT, m.IN, m.HIGH, m.LOW = "BCM", "BOARD", "OUT", "IN", 1, 0
    m.PUD_UP, m.PUD_DOWN, m.PUD_OFF = "UP", "DOWN", "OFF"

    class PWM:
        def __init__(self, pin, freq):
            if pin == 99:
                raise ValueError("Channel 99 is not a PWM")
            calls.append(("PWM", pin, freq))

        def start(self, d):
            calls.append(("start", d))

        def ChangeDutyCycle(self, d):  # noqa: N802 (vendor API)
            calls.append(("duty", d))

        def stop(self):
            calls.append(("stop",))

    m.PWM = PWM
    for name in ("setwarnings", "setmode", "setup", "output", "cleanup"):
        m.__dict__[name] = (lambda n: lambda *a, **k: calls.append((n, *a, *sorted(k.items()))))(name)
    m.input = lambda pin: calls.append(("input", pin)) or 1
    return m


@pytest.mark.parametrize("backend,pkg", [("rpi", "RPi"), ("jetson", "Jetson")])
def test_vendor_backend_drives_documented_api(monkeypatch, backend, pkg):
    calls: list = []
    mod = _vendor_module(calls)
    parent = types.ModuleType(pkg)
    parent.GPIO = mod
    monkeypatch.setitem(sys.modules, pkg, parent)
    monkeypatch.setitem(sys.modules, f"{pkg}.GPIO", mod)
    g = open_gpio(GpioConfig(backend=backend))
    g.setup_output(18)
    p = g.pwm(18, 800)
    p.set_duty(0.25)
    g.write(18, True)
    assert g.read(18) is True
    with pytest.raises(GpioError, match="pin 99"):
        g.pwm(99, 800)
    g.close()
    assert ("setmode", "BCM") in calls
    assert ("setup", 18, "OUT", ("initial", 0)) in calls
    assert ("PWM", 18, 800) in calls and ("start", 0.0) in calls and ("duty", 25.0) in calls
    assert ("output", 18, 1) in calls
    assert calls[-1] == ("cleanup", [18])


@pytest.mark.parametrize("backend,pkg", [("rpi", "RPi.GPIO"), ("jetson", "Jetson.GPIO")])
def test_missing_vendor_package_is_named(monkeypatch, backend, pkg):
    monkeypatch.setitem(sys.modules, pkg.split(".")[0], None)
    with pytest.raises(GpioUnavailable, match=pkg.replace(".", r"\.")):
        open_gpio(GpioConfig(backend=backend))
