"""NVIDIA Jetson GPIO through Jetson.GPIO (same API as RPi.GPIO; PWM only on the board's PWM pins)."""

from __future__ import annotations

from drivers.gpio._rpistyle import RpiStyleGpio
from drivers.gpio.base import GpioUnavailable


class JetsonGpio(RpiStyleGpio):
    def __init__(self, numbering: str = "BCM") -> None:
        try:
            import Jetson.GPIO as GPIO  # noqa: N814  (vendor module, imported lazily)
        except (ImportError, RuntimeError) as exc:
            raise GpioUnavailable(
                f"GPIO backend 'jetson' needs the Jetson.GPIO module: `pip install Jetson.GPIO` ({exc})"
            ) from None
        super().__init__(GPIO, numbering)
