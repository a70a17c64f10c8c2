"""Hot lists: signed by the department, matched OCR-tolerantly, alerts sealed first.

Public API: `HotlistManager` (install, load, match, status), `Alerter`
(read -> sealed alerts, relay), `sign_hotlist` (department side),
`Hit.to_alert()` (the alert body), `HotlistError`, `CLETS_NOTICE`.
"""

from firmware.hotlist.alert import Alerter, read_candidates
from firmware.hotlist.manager import HotlistManager, storage_key
from firmware.hotlist.match import CLETS_NOTICE, DEFAULT_CONFUSIONS, Hit, Matcher
from firmware.hotlist.model import Entry, HotList, HotlistError, sign_hotlist, verify_hotlist

__all__ = [
    "Alerter", "CLETS_NOTICE", "DEFAULT_CONFUSIONS", "Entry", "Hit", "HotList", "HotlistError",
    "HotlistManager", "Matcher", "read_candidates", "sign_hotlist", "storage_key", "verify_hotlist",
]
