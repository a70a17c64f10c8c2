"""Infrared illuminator: IR LEDs (PWM level), IR-cut filter, day/night decision, fail-safe off.

Why so careful: high-power IR LEDs left on overheat and blind the camera by day,
and nobody is on the pole to notice. The LEDs go off on normal exit, on an
exception (context manager), when frames stop (`tick` after `stall_off_s`), above
the temperature limit, and -- after a SIGKILL, when no Python code runs -- by the
service manager's stop hook calling `force_off` through `polewatch illuminator off`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers import sun
from drivers.gpio import Gpio, GpioError, Pwm

log = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def read_cpu_temperature(path: Path = THERMAL_ZONE) -> float | None:
    """SoC temperature in degrees C where the kernel exposes it, else None."""
    try:
        return int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


class Illuminator:
    """Owns the LED and IR-cut pins. Not thread-safe by itself: call from one thread (the pipeline's)."""

    def __init__(
        self,
        cfg: Any,  # firmware.config.IlluminatorConfig
        gpio: Gpio,
        *,
        latitude: float | None = None,
        longitude: float | None = None,
        temperature: Callable[[], float | None] = read_cpu_temperature,
        utcnow: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cfg, self.gpio = cfg, gpio
        self.latitude, self.longitude = latitude, longitude
        self._temperature, self._utcnow = temperature, utcnow
        self.night = False
        self.duty = 0.0
        self.reason = "start"
        self.switches = 0
        self.temperature_c: float | None = None
        self._thermal_limited = False
        self._stalled = False
        self._last_switch: float | None = None
        self._last_frame: float | None = None
        self._pwm: Pwm | None = None
        self._started = False

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        c = self.cfg
        if c.led_pin is not None:
            self.gpio.setup_output(c.led_pin, initial=False)
            if c.pwm:
                try:
                    self._pwm = self.gpio.pwm(c.led_pin, c.pwm_frequency_hz)
                except GpioError as exc:
                    log.warning("illuminator: no PWM on pin %s (%s); switching LEDs on/off only", c.led_pin, exc)
        if c.ircut_pin is not None:
            self.gpio.setup_output(c.ircut_pin, initial=c.ircut_day_level)
        if c.ambient_pin is not None:
            self.gpio.setup_input(c.ambient_pin)
        self._started = True
        if c.mode == "night":
            self._switch(True, None, "mode=night")
        elif c.mode == "sun":
            self._switch(self._sun_says_night(), None, "sun")
        self._apply()

    def close(self) -> None:
        """Normal exit: LEDs off, PWM stopped, pins released."""
        self.off("exit")
        if self._pwm is not None:
            try:
                self._pwm.stop()
            except GpioError:
                log.exception("illuminator: stopping PWM failed")
            self._pwm = None
        try:
            self.gpio.close()
        except GpioError:
            log.exception("illuminator: releasing pins failed")
        self._started = False

    def __enter__(self) -> Illuminator:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.off(f"crash: {exc_type.__name__}")
        self.close()

    @staticmethod
    def force_off(cfg: Any, gpio: Gpio) -> None:
        """The stop hook: drive the LED pin low and the IR-cut filter to day, whatever state we find."""
        if cfg.led_pin is not None:
            gpio.setup_output(cfg.led_pin, initial=False)
            gpio.write(cfg.led_pin, False)
        if cfg.ircut_pin is not None:
            gpio.setup_output(cfg.ircut_pin, initial=cfg.ircut_day_level)

    # -- inputs -----------------------------------------------------------
    def observe(self, brightness: float, gain: float | None, now: float) -> None:
        """One frame's exposure figures (mean grey 0..255, analogue gain); `now` is the frame's monotonic time."""
        self._last_frame = now
        if self._stalled:
            self._stalled = False
            log.info("illuminator: frames resumed")
            self._apply()
        c = self.cfg
        if c.mode == "sun":
            want = self._sun_says_night()
        elif c.mode != "auto":
            return
        elif c.ambient_pin is not None:
            want = self.gpio.read(c.ambient_pin) != c.ambient_day_level
        elif not self.night:
            want = brightness < c.night_brightness or (gain is not None and gain >= c.night_gain)
        else:  # leave night only when clearly bright with low gain (hysteresis)
            want = not (brightness > c.day_brightness and (gain is None or gain < c.night_gain / 2))
        if want != self.night:
            if self._last_switch is not None and now - self._last_switch < c.min_dwell_s:
                return
            self._switch(want, now, "sun" if c.mode == "sun" else "scene")
            self._apply()

    def tick(self, now: float) -> None:
        """Periodic safety check: stalled frames and temperature. `now` on the frames' clock."""
        if self._last_frame is not None and now - self._last_frame > self.cfg.stall_off_s and not self._stalled:
            self._stalled = True
            log.warning("illuminator: no frames for %.1f s, LEDs off", now - self._last_frame)
            self._apply()
            return
        self._apply()

    # -- state ------------------------------------------------------------
    @property
    def led_on(self) -> bool:
        return self.duty > 0

    def led_state(self) -> str:
        return "on" if self.led_on else "off"

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.cfg.mode,
            "night": self.night,
            "led": self.led_state(),
            "duty": round(self.duty, 3),
            "reason": self.reason,
            "switches": self.switches,
            "temperature_c": self.temperature_c,
            "thermal_limited": self._thermal_limited,
            "stalled": self._stalled,
        }

    def off(self, reason: str) -> None:
        """Fail-safe: LEDs off now. Never raises: it runs on the way out of a crash."""
        self.reason = reason
        self.duty = 0.0
        try:
            if self._pwm is not None:
                self._pwm.set_duty(0.0)
            if self.cfg.led_pin is not None and self._started:
                self.gpio.write(self.cfg.led_pin, False)
        except Exception:  # noqa: BLE001 - must not mask the original failure
            log.exception("illuminator: turning LEDs off failed")

    # -- internals --------------------------------------------------------
    def _sun_says_night(self) -> bool:
        if self.latitude is None or self.longitude is None:
            return False
        return sun.elevation(self.latitude, self.longitude, self._utcnow()) < self.cfg.sun_night_elevation_deg

    def _switch(self, night: bool, now: float | None, why: str) -> None:
        if night != self.night:
            self.switches += 1
            log.info("illuminator: %s (%s)", "night" if night else "day", why)
        self.night = night
        self._last_switch = now
        if self.cfg.ircut_pin is not None and self._started:
            level = self.cfg.ircut_day_level if not night else not self.cfg.ircut_day_level
            self.gpio.write(self.cfg.ircut_pin, level)

    def _apply(self) -> None:
        c = self.cfg
        if not self._started:
            return
        self.temperature_c = self._temperature()
        t = self.temperature_c
        if t is not None:
            if t >= c.max_temperature_c:
                self._thermal_limited = True
            elif t < c.max_temperature_c - c.temperature_hysteresis_c:
                self._thermal_limited = False
        if not c.enabled or not self.night:
            return self.off("day" if c.enabled else "disabled")
        if self._stalled:
            return self.off("stall")
        if self._thermal_limited:
            return self.off(f"temperature {t:.1f} C")
        if c.led_pin is None:
            return self.off("no LED pin")
        duty = min(c.level, c.max_duty_cycle) if self._pwm is not None else 1.0
        if duty <= 0:
            return self.off("level 0")
        if duty != self.duty or self.reason != "night":
            try:
                if self._pwm is not None:
                    self._pwm.set_duty(duty)
                else:
                    self.gpio.write(c.led_pin, True)
            except GpioError:
                log.exception("illuminator: turning LEDs on failed")
                return self.off("gpio error")
            self.duty = duty
            self.reason = "night"
