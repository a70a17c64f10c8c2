"""Illuminator: day/night with hysteresis and dwell, limits, and LEDs off on every way out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from drivers import sun
from drivers.gpio import FakeGpio
from drivers.illuminator import Illuminator
from firmware.config import IlluminatorConfig

LED, IRCUT = 18, 23


def make(temp=lambda: 40.0, **kw):
    cfg = IlluminatorConfig(min_dwell_s=kw.pop("min_dwell_s", 60.0), **kw)
    g = FakeGpio()
    return Illuminator(cfg, g, temperature=temp, latitude=37.7749, longitude=-122.4194), g


def duty(g):
    return g.pins[LED]["duty"]


def test_dark_scene_turns_night_on_and_dwell_holds_it():
    ill, g = make()
    ill.start()
    assert duty(g) == 0.0 and g.pins[IRCUT]["value"] is True  # day: filter in, LEDs off
    ill.observe(brightness=20, gain=8.0, now=0.0)
    assert ill.night and duty(g) == 0.8  # level 1.0 capped by max_duty_cycle 0.8
    assert g.pins[IRCUT]["value"] is False
    ill.observe(brightness=150, gain=1.0, now=30.0)  # bright, but within the minimum dwell
    assert ill.night
    ill.observe(brightness=150, gain=4.0, now=70.0)  # bright but gain still high: hysteresis keeps night
    assert ill.night
    ill.observe(brightness=150, gain=1.0, now=71.0)
    assert not ill.night and duty(g) == 0.0 and ill.switches == 2


def test_between_thresholds_nothing_changes():
    ill, g = make(min_dwell_s=0)
    ill.start()
    ill.observe(brightness=70, gain=2.0, now=0.0)  # between night 50 and day 90
    assert not ill.night
    ill.observe(brightness=10, gain=2.0, now=1.0)
    ill.observe(brightness=70, gain=2.0, now=2.0)
    assert ill.night


def test_temperature_limit_with_hysteresis():
    t = {"c": 40.0}
    ill, g = make(temp=lambda: t["c"], mode="night")
    ill.start()
    assert duty(g) == 0.8
    t["c"] = 80.0
    ill.tick(1.0)
    assert duty(g) == 0.0 and ill.state()["thermal_limited"] and "temperature" in ill.reason
    t["c"] = 72.0
    ill.tick(2.0)
    assert duty(g) == 0.0
    t["c"] = 69.0
    ill.tick(3.0)
    assert duty(g) == 0.8


def test_stalled_frames_turn_leds_off_until_frames_resume():
    ill, g = make(mode="night", stall_off_s=5.0)
    ill.start()
    ill.observe(20, 8.0, now=100.0)
    ill.tick(104.0)
    assert duty(g) == 0.8
    ill.tick(105.5)
    assert duty(g) == 0.0 and ill.reason == "stall" and ill.state()["stalled"]
    ill.observe(20, 8.0, now=106.0)
    assert duty(g) == 0.8


def test_normal_exit_turns_leds_off_and_releases_pins():
    ill, g = make(mode="night")
    with ill:
        assert duty(g) == 0.8
    assert g.pins[LED] == {"mode": "in", "value": False, "duty": None}
    assert [(e.what, e.value) for e in g.history(LED)][-4:] == [
        ("duty", 0.0), ("write", False), ("pwm_stop", None), ("release", None)]


def test_exception_turns_leds_off():
    ill, g = make(mode="night")
    with pytest.raises(RuntimeError):
        with ill:
            assert duty(g) == 0.8
            raise RuntimeError("pipeline crashed")
    assert ill.reason.startswith("exit") or ill.reason.startswith("crash")
    duties = [e.value for e in g.history(LED) if e.what == "duty"]
    assert duties[-1] == 0.0 and g.pins[LED]["mode"] == "in"


def test_no_pwm_pin_switches_on_off():
    cfg = IlluminatorConfig(mode="night")
    g = FakeGpio(pwm_pins=set())
    ill = Illuminator(cfg, g, temperature=lambda: None)
    ill.start()
    assert g.pins[LED]["value"] is True and ill.duty == 1.0
    ill.close()
    assert g.pins[LED]["value"] is False


def test_ambient_input_decides():
    ill, g = make(ambient_pin=5, min_dwell_s=0)
    ill.start()
    g.set_input(5, True)  # photo switch says daylight
    ill.observe(5, 16.0, now=0.0)
    assert not ill.night
    g.set_input(5, False)
    ill.observe(200, 1.0, now=1.0)
    assert ill.night


def test_sun_mode_uses_pole_position():
    now = {"t": datetime(2024, 6, 21, 7, 0, tzinfo=UTC)}  # midnight in San Francisco
    cfg = IlluminatorConfig(mode="sun", min_dwell_s=0)
    g = FakeGpio()
    ill = Illuminator(cfg, g, latitude=37.7749, longitude=-122.4194, temperature=lambda: None, utcnow=lambda: now["t"])
    ill.start()
    assert ill.night and duty(g) == 0.8
    now["t"] = datetime(2024, 6, 21, 20, 0, tzinfo=UTC)  # 1 pm local
    ill.observe(10, 16.0, now=1.0)  # the scene does not matter in sun mode
    assert not ill.night and duty(g) == 0.0


def test_force_off_is_the_stop_hook(tmp_path):
    state = tmp_path / "g.json"
    ill = Illuminator(IlluminatorConfig(mode="night"), FakeGpio(state_file=state), temperature=lambda: None)
    ill.start()
    assert FakeGpio.read_state(state)[LED]["duty"] == 0.8
    Illuminator.force_off(IlluminatorConfig(), FakeGpio(state_file=state))
    assert FakeGpio.read_state(state)[LED] == {"mode": "out", "value": False, "duty": None}


@pytest.mark.parametrize(
    "lat,lon,day,rise,set_",
    [
        # San Francisco, summer solstice 2024: 05:48 and 20:35 PDT
        (37.7749, -122.4194, date(2024, 6, 21), (12, 48), (3, 35)),
        # Greenwich, equinox 2024: about 06:03 and 18:14 UTC
        (51.4769, 0.0, date(2024, 3, 20), (6, 3), (18, 14)),
    ],
)
def test_sunrise_sunset_noaa(lat, lon, day, rise, set_):
    r, s = sun.sunrise_sunset(lat, lon, day)
    assert abs((r.hour * 60 + r.minute) - (rise[0] * 60 + rise[1])) <= 3
    assert abs(((s.hour * 60 + s.minute) - (set_[0] * 60 + set_[1]))) <= 3
    assert abs(sun.elevation(lat, lon, r) + 0.833) < 0.3


def test_polar_night_has_no_sunrise():
    assert sun.sunrise_sunset(78.2, 15.6, date(2024, 12, 21)) is None
    assert sun.elevation(78.2, 15.6, datetime(2024, 12, 21, 12, tzinfo=UTC)) < 0
