"""Shared code for the two vendor libraries with the RPi.GPIO API (RPi.GPIO, rpi-lgpio, Jetson.GPIO)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from drivers.gpio.base import Gpio, GpioError, Pull, Pwm, clamp_duty


class _VendorPwm(Pwm):
    def __init__(self, handle: Any) -> None:
        self._h = handle

    def set_duty(self, fraction: float) -> None:
        self._h.ChangeDutyCycle(clamp_duty(fraction) * 100.0)

    def stop(self) -> None:
        self._h.stop()


class RpiStyleGpio(Gpio):
    """Drives a board through a module with the RPi.GPIO API (setmode/setup/output/input/PWM)."""

    def __init__(self, module: ModuleType, numbering: str = "BCM") -> None:
        self.G = module
        self.G.setwarnings(False)
        self.G.setmode(self.G.BCM if numbering == "BCM" else self.G.BOARD)
        self._pins: set[int] = set()

    def setup_output(self, pin: int, initial: bool = False) -> None:
        self._call(pin, self.G.setup, pin, self.G.OUT, initial=self.G.HIGH if initial else self.G.LOW)
        self._pins.add(pin)

    def setup_input(self, pin: int, pull: Pull = "off") -> None:
        pud = {"up": self.G.PUD_UP, "down": self.G.PUD_DOWN, "off": self.G.PUD_OFF}[pull]
        self._call(pin, self.G.setup, pin, self.G.IN, pull_up_down=pud)
        self._pins.add(pin)

    def write(self, pin: int, value: bool) -> None:
        self._call(pin, self.G.output, pin, self.G.HIGH if value else self.G.LOW)

    def read(self, pin: int) -> bool:
        return bool(self._call(pin, self.G.input, pin))

    def pwm(self, pin: int, frequency_hz: float) -> Pwm:
        handle = self._call(pin, self.G.PWM, pin, frequency_hz)
        handle.start(0.0)
        return _VendorPwm(handle)

    def close(self) -> None:
        if self._pins:
            self.G.cleanup(sorted(self._pins))
            self._pins.clear()

    @staticmethod
    def _call(pin: int, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (ValueError, RuntimeError) as exc:
            raise GpioError(f"pin {pin}: {exc}") from exc
