"""Sun position at the pole (NOAA solar calculator equations), for day/night by the clock.

Accurate to about a minute between +/-72 degrees latitude, which is plenty to
decide when the IR illuminator must be on; no network, no extra dependency.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

_J2000 = 2451545.0


def _julian_century(when: datetime) -> float:
    when = when.astimezone(UTC)
    jd = when.timestamp() / 86400.0 + 2440587.5
    return (jd - _J2000) / 36525.0


def _declination_and_eqtime(jc: float) -> tuple[float, float]:
    """Solar declination (radians) and equation of time (minutes)."""
    l0 = math.radians((280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360)
    m = math.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    c = (
        math.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + math.sin(3 * m) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * jc)
    app_long = math.radians(math.degrees(l0) + c - 0.00569 - 0.00478 * math.sin(omega))
    eps0 = 23 + (26 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60) / 60
    eps = math.radians(eps0 + 0.00256 * math.cos(omega))
    decl = math.asin(math.sin(eps) * math.sin(app_long))
    y = math.tan(eps / 2) ** 2
    eqtime = 4 * math.degrees(
        y * math.sin(2 * l0)
        - 2 * e * math.sin(m)
        + 4 * e * y * math.sin(m) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * e * e * math.sin(2 * m)
    )
    return decl, eqtime


def elevation(latitude: float, longitude: float, when: datetime) -> float:
    """Sun elevation above the horizon in degrees (no refraction correction)."""
    when = when.astimezone(UTC)
    decl, eqtime = _declination_and_eqtime(_julian_century(when))
    minutes = when.hour * 60 + when.minute + when.second / 60 + when.microsecond / 6e7
    tst = (minutes + eqtime + 4 * longitude) % 1440
    ha = math.radians(tst / 4 - 180)
    lat = math.radians(latitude)
    cos_zen = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))


def sunrise_sunset(
    latitude: float, longitude: float, day: date, zenith_deg: float = 90.833
) -> tuple[datetime, datetime] | None:
    """UTC sunrise and sunset for the given UTC date; None during polar day or night."""
    noon_guess = datetime.combine(day, time(12), UTC) - timedelta(minutes=4 * longitude)
    decl, eqtime = _declination_and_eqtime(_julian_century(noon_guess))
    lat = math.radians(latitude)
    cos_ha = math.cos(math.radians(zenith_deg)) / (math.cos(lat) * math.cos(decl)) - math.tan(lat) * math.tan(decl)
    if not -1.0 <= cos_ha <= 1.0:
        return None
    ha = math.degrees(math.acos(cos_ha))
    noon = 720 - 4 * longitude - eqtime
    start = datetime.combine(day, time(0), UTC)
    return start + timedelta(minutes=noon - 4 * ha), start + timedelta(minutes=noon + 4 * ha)
