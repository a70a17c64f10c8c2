"""Match a read's OCR candidates against hot-list entries, tolerant to OCR confusions.

OCR mistakes on plates are mostly look-alike characters (O/0/D/Q, I/1/L,
B/8, S/5, Z/2, G/6). Both sides are "folded" so look-alikes compare equal,
then a Levenshtein distance up to `max_edit_distance` is allowed on the folded
text. Exact entries sit in a deletion-neighbourhood index (every string
reachable by up to k deletions of the folded key), so a lookup costs a few
dictionary probes whatever the list size; partial entries (`?`, `*`) are
matched by one edit-distance DP vectorised over all partial patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from firmware.hotlist.model import Entry

DEFAULT_CONFUSIONS: tuple[str, ...] = ("O0DQ", "I1L", "B8", "S5", "Z2", "G6")
CLETS_NOTICE = (
    "Hot-list hit only: per department policy the officer must confirm the plate visually and "
    "verify the hit through CLETS before taking any enforcement action."
)
_ANY, _STAR = -1, -2
MIN_FUZZY_LEN = 5  # shorter plates match exactly (up to look-alikes): one edit away is too many cars
_QUALITY = {"exact": 1.0, "confusion": 0.9}


def fold_table(confusions: Iterable[str]) -> dict[int, str]:
    """Translation table mapping every character of a confusion group to the group's last digit/char."""
    table: dict[int, str] = {}
    for group in confusions:
        group = group.upper()
        if len(group) < 2:
            raise ValueError(f"confusion group {group!r} needs at least two characters")
        canon = group[1] if group[1].isdigit() else group[0]
        for ch in group:
            table[ord(ch)] = canon
    return table


def normalise_plate(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


def levenshtein(a: str, b: str, limit: int) -> int:
    """Edit distance, or limit+1 as soon as it is known to exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        best = i
        for j, cb in enumerate(b, 1):
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            cur.append(v)
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def deletions(key: str, k: int) -> set[str]:
    """All strings made by deleting up to k characters of key."""
    out = {key}
    frontier = {key}
    for _ in range(k):
        nxt = {s[:i] + s[i + 1 :] for s in frontier for i in range(len(s))}
        out |= nxt
        frontier = nxt
    return out


@dataclass(frozen=True, slots=True)
class Hit:
    """One entry matched by one candidate: what the officer needs to judge the alert."""

    entry: Entry
    candidate: str
    rank: int  # 0 = the read's best text
    candidate_confidence: float
    kind: str  # exact | confusion | edit
    edit_distance: int  # on folded text
    score: float

    def to_alert(self) -> dict[str, Any]:
        """The hit as the store seals it (closed schema of firmware.seal: pattern, purpose,
        match, case, quality, list, notice)."""
        e = self.entry
        match = self.kind if self.kind != "edit" else f"edit-{self.edit_distance}"
        return {
            "pattern": e.pattern,
            "purpose": e.purpose,
            "match": f"{match}:{self.candidate}#{self.rank}"[:32],
            "case": e.case,
            "quality": round(min(max(self.score, 0.0), 1.0), 4),
            "list": f"{e.list_name} v{e.list_version}"[:128],
            "notice": CLETS_NOTICE,
        }


class Matcher:
    """Immutable index over a set of entries; rebuilt when a list changes."""

    def __init__(
        self,
        entries: Sequence[Entry],
        max_edit_distance: int = 1,
        confusions: Iterable[str] = DEFAULT_CONFUSIONS,
        partial_edit_distance: int = 0,
    ) -> None:
        if not 0 <= max_edit_distance <= 3 or not 0 <= partial_edit_distance <= 3:
            raise ValueError("edit distances must be 0..3")
        self.k = max_edit_distance
        # Partial plates are already uncertain; edits on top of wildcards make false alerts.
        self.kp = partial_edit_distance
        self._fold = fold_table(confusions)
        self.entries: list[Entry] = list(entries)
        self._folded: list[str] = []
        self._index: dict[str, int | list[int]] = {}
        partial: list[int] = []
        for i, e in enumerate(self.entries):
            f = e.pattern.translate(self._fold)
            self._folded.append(f)
            if e.partial:
                partial.append(i)
                continue
            for d in deletions(f, self._limit(f)):
                cur = self._index.get(d)
                if cur is None:
                    self._index[d] = i
                elif isinstance(cur, int):
                    self._index[d] = [cur, i]
                else:
                    cur.append(i)
        self._partial = self._build_partial(partial)

    def _limit(self, folded: str) -> int:
        return self.k if len(folded) >= MIN_FUZZY_LEN else 0

    def __len__(self) -> int:
        return len(self.entries)

    def _build_partial(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Filter arrays for partial patterns: ids, literal-character bit masks, min and max length."""
        if not ids:
            return None
        masks = np.array([_charmask(self._folded[i]) for i in ids], dtype=np.uint64)
        lo = np.array([sum(c != "*" for c in self._folded[i]) for i in ids], dtype=np.int32)
        hi = np.array([99 if "*" in self._folded[i] else len(self._folded[i]) for i in ids], dtype=np.int32)
        return np.asarray(ids), masks, lo - self.kp, hi + self.kp

    def _partial_distances(self, q: str) -> dict[int, int]:
        """{entry id: folded distance <= k} for partial patterns.

        A vectorised filter first keeps only patterns whose length fits and
        that miss at most k of their distinct known characters in the query
        (each missing character costs at least one edit); the few survivors
        get an exact wildcard edit-distance DP.
        """
        ids, masks, lo, hi = self._partial  # type: ignore[misc]
        missing = masks & np.uint64(~_charmask(q) & _FULL)
        miss = _POP[missing.view(np.uint8).reshape(-1, 8)].sum(axis=1)
        keep = np.nonzero((miss <= self.kp) & (lo <= len(q)) & (len(q) <= hi))[0]
        out: dict[int, int] = {}
        for r in keep:
            i = int(ids[r])
            d = wild_distance(q, self._folded[i], self.kp)
            if d <= self.kp:
                out[i] = d
        return out

    def _quality(self, raw: str, folded_q: str, idx: int, dist: int) -> str:
        e = self.entries[idx]
        if dist > 0:
            return "edit"
        if e.partial:
            return "exact" if _wild_equal(raw, e.pattern) else "confusion"
        return "exact" if raw == e.pattern else "confusion"

    def match(self, candidates: Sequence[tuple[str, float]], now: datetime | None = None) -> list[Hit]:
        """Best hit per entry over all candidates, highest score first; expired entries never hit."""
        best: dict[int, Hit] = {}
        raws = [normalise_plate(text) for text, _ in candidates]
        folded = [r.translate(self._fold) if 0 < len(r) <= 12 else "" for r in raws]
        for rank, (raw, fq, (_, conf)) in enumerate(zip(raws, folded, candidates)):
            if not fq:
                continue
            found = self._partial_distances(fq) if self._partial is not None else {}
            for d in deletions(fq, self.k):
                cur = self._index.get(d)
                if cur is None:
                    continue
                for i in (cur,) if isinstance(cur, int) else cur:
                    if i not in found:
                        lim = self._limit(self._folded[i])
                        dist = levenshtein(fq, self._folded[i], lim)
                        if dist <= lim:
                            found[i] = dist
            for i, dist in found.items():
                e = self.entries[i]
                if now is not None and e.expires <= now:
                    continue
                kind = self._quality(raw, fq, i, dist)
                quality = _QUALITY.get(kind, 0.9 - 0.25 * dist)
                score = float(conf) * quality
                old = best.get(i)
                if old is None or score > old.score:
                    best[i] = Hit(e, raw, rank, float(conf), kind, dist, score)
        return sorted(best.values(), key=lambda h: -h.score)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_BIT = {ch: 1 << i for i, ch in enumerate(_ALPHABET)}
_FULL = (1 << len(_ALPHABET)) - 1
_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


def _charmask(text: str) -> int:
    m = 0
    for ch in text:
        m |= _BIT.get(ch, 0)
    return m


def wild_distance(q: str, pattern: str, limit: int) -> int:
    """Edit distance between q and a pattern where `?` is any one character and `*` any run."""
    n = len(pattern)
    prev = [0] * (n + 1)
    for j in range(1, n + 1):
        prev[j] = prev[j - 1] + (pattern[j - 1] != "*")
    for ch in q:
        cur = [prev[0] + 1]
        for j in range(1, n + 1):
            p = pattern[j - 1]
            if p == "*":
                v = min(prev[j], cur[j - 1], prev[j - 1])
            else:
                v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (p != "?" and p != ch))
            cur.append(v)
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[n]


def _wild_equal(text: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(text, pattern.replace("[", ""))
