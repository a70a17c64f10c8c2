"""The purposes the department's ALPR policy allows, and nothing else.

Civil Code 1798.90.51(b) requires a usage and privacy policy that lists the
authorised purposes; the department's policy lists the ones below. A hot-list
entry, a remote command or a data access that names any other purpose
(infractions, parking, minor vehicle-code violations, curiosity) is refused
with `PurposeRefused`, and the caller audits the refusal.
"""

from __future__ import annotations

# Hot-list purposes: why a plate may be on a list and cause an alert.
HOTLIST_PURPOSES: dict[str, str] = {
    "stolen_vehicle": "Stolen vehicle",
    "stolen_plate": "Stolen licence plate",
    "wanted_person": "Wanted person",
    "felony_suspect": "Suspect in a felony or serious misdemeanour",
    "arrest_warrant": "Subject of an arrest warrant",
    "missing_person": "Missing child or elder (Amber or Silver alert)",
    "violent_crime_witness_victim": "Witness or victim of a violent crime",
    "event_protection": "Protection of a special event or critical infrastructure",
}

# Extra purposes for reaching data or settings (not for putting plates on a list).
ACCESS_PURPOSES: dict[str, str] = {
    **HOTLIST_PURPOSES,
    "investigation": "Criminal investigation with a case number",
    "audit": "Policy compliance audit",
    "maintenance": "Device configuration and maintenance (no plate data)",
}

# Purposes for which the policy demands a case or reference number.
CASE_REQUIRED: frozenset[str] = frozenset(HOTLIST_PURPOSES) | {"investigation"}


class PurposeRefused(ValueError):
    """A purpose the policy does not allow; the message names it and the allowed ones."""


def check_hotlist_purpose(code: object) -> str:
    """Return `code` if the policy allows it for a hot-list entry, else raise."""
    if isinstance(code, str) and code in HOTLIST_PURPOSES:
        return code
    raise PurposeRefused(
        f"purpose {code!r} is not allowed by the ALPR policy; allowed: {', '.join(HOTLIST_PURPOSES)}"
    )


def check_access_purpose(code: object, case: str | None) -> str:
    """Return `code` if it is an allowed access purpose with a case number where one is required."""
    if not (isinstance(code, str) and code in ACCESS_PURPOSES):
        raise PurposeRefused(
            f"purpose {code!r} is not allowed by the ALPR policy; allowed: {', '.join(ACCESS_PURPOSES)}"
        )
    if code in CASE_REQUIRED and not (case and case.strip()):
        raise PurposeRefused(f"purpose {code!r} requires a case or reference number")
    return code
