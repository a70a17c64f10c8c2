"""The GPIO interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

Pull = Literal["up", "down", "off"]


class GpioError(Exception):
    """A pin operation the board refused (bad pin, no PWM on that pin)."""


class GpioUnavailable(GpioError):
    """The backend's vendor package is missing; the message names it and how to install it."""


class Pwm(ABC):
    """A hardware or software PWM channel on one pin; duty is a fraction 0..1."""

    @abstractmethod
    def set_duty(self, fraction: float) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...


class Gpio(ABC):
    """Digital outputs, inputs and PWM by pin number (numbering chosen by the backend's config)."""

    @abstractmethod
    def setup_output(self, pin: int, initial: bool = False) -> None: ...

    @abstractmethod
    def setup_input(self, pin: int, pull: Pull = "off") -> None: ...

    @abstractmethod
    def write(self, pin: int, value: bool) -> None: ...

    @abstractmethod
    def read(self, pin: int) -> bool: ...

    @abstractmethod
    def pwm(self, pin: int, frequency_hz: float) -> Pwm:
        """Start PWM at duty 0 on an output pin; GpioError when the pin cannot do PWM."""

    @abstractmethod
    def close(self) -> None:
        """Release the pins this process set up (outputs return to inputs)."""


def clamp_duty(fraction: float) -> float:
    if not 0.0 <= fraction <= 1.0:
        raise GpioError(f"PWM duty {fraction!r} outside 0..1")
    return float(fraction)
