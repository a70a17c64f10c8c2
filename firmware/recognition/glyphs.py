"""Glyph evidence for O against 0: the width of the glyph the OCR read, against the plate's digits.

The OCR network under-calls O. Plates that issue O at all draw it wider than 0 (the
digits of a plate die share one width; an O is a circle, a 0 an upright oval), but O is
rare in US serials and the network, trained on their letter frequencies, reads a wide,
round O as 0 for a fifth to a third of the Os on clean synthetic plates in sans fonts
(docs/recognition.md).
The geometry says what its eye misses: where the network itself holds the O reading
as a candidate, a glyph at least `WIDE` times as wide as the plate's other digits
promotes it. Only that direction on one crop: O read as 0 is the error the network makes, and
monospaced dies draw O no wider than 0, so one narrow glyph proves little. Over a vehicle's many
camera frames (`round_widths`, pooled by the tracker with `pooled_choice`) a glyph narrower than
the digits in the median is evidence enough that an O read there is a 0. On a vehicle's fused plate
(`fused_choice`) each O or 0 is measured once, against the digits or, with none, against the letters
(`rounds_say`).

An I passed over beside another, on a vehicle's fused plate only (`fused_choice`, `bar_choice`): CTC
writes a doubled letter only with a blank column between its two, and the OCR's path drops one I of an
II. Where a rival of the vote holds the II, the glyphs between the run's neighbours are counted and
shaped (`Glyphs.bars`). Never a 1 read as I on its shape: real US dies draw 1 as a bare bar too.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import cv2
import numpy as np

from firmware.recognition import ocr

WIDE = 1.12  # an O's glyph is at least this many times the median width of the plate's digits
MERGED = 1.7  # wider than this the glyph has run into a neighbour or a frame: no evidence
# a vehicle's frames pooled (the median of round_widths over them): an O read on a glyph no wider than
# ROUND_NARROW times the plate's digits is a 0 (simulated road, four seeds: 0s at medians 0.64-1.07 with
# outliers up to 1.9, Os at 1.29-1.43 and one run into its neighbours at 1.0)
ROUND_NARROW = 0.9
# measured once on a vehicle's nearest frames aligned and averaged (recognition.fusion), an O/0 glyph this
# many times the plate's digits or wider (up to MERGED) is an O (simulated road, eight runs of six seeds by day
# and two by night: Os at 1.30-1.40 and one at 1.15; 0s at 0.9-1.07, four at 1.10-1.21 and one run into a
# smudge at 1.46)
FUSED_WIDE = 1.25
# a fused plate with no other digit to measure an O or 0 against (vanity texts: ZTBNOPZ, UC0ZN) measures it
# against the median of its letters of middling width (LETTER_REF: not I, J, M, W, nor Q, O, the round ones).
# Simulated road, seeds 1-8, fused passes: Os at 0.98-1.39 of them (10th percentile 1.12), 0s at 0.69-1.26
# (90th percentile 1.04, 98th 1.08): narrower apart than against digits, so the thresholds sit wider
LETTER_REF = "ABCDEFGHKLNPRSTUVXYZ"
LETTER_WIDE = 1.15
LETTER_NARROW = 0.92
ALT_SHARE = 0.1  # the O reading must hold at least this share of the top read's probability
SCALE = 2  # glyphs are measured on the crop resized to SCALE times the OCR input
DIGITS = "023456789"  # digits whose width is the plate's digit width (1 is narrow in most fonts)
# an I counted on a vehicle's fused plate: a bare bar, the same ink in every pixel row whatever its slant
# (monospaced dies and Noto Sans serif their I, which then says nothing). Simulated road, seeds 1-8, on the
# passes' fused plates: 34 of 48 runs of Is found as bars, 1 of 195 1s taken for one; but on real US plates
# (us-crops-dev) 23 of 143 1s are such bars (Virginia, Arkansas, Connecticut, Massachusetts, New Hampshire,
# Rhode Island, Hawaii) and none of 21 Is, so a bar only counts glyphs and never tells I from 1
STRICT = 0.4  # the strict threshold: this share of the way from Otsu's level to the ink's mean
LOCAL_BLOCK, LOCAL_C = 61, 8  # the local threshold: a block about a glyph high, ink this far past its mean
BAR_EVEN = 1.4  # a bar's widest pixel rows (95th percentile) hold at most this many times its median row's ink
BAR_NARROW = 0.5  # and its median row at most this share of the width of the plate's other glyphs (median)
# a glyph is cut in two where no more than this share of the text's height is ink in a column between two
# characters' columns: a sticker's edge or a smear joining them (the road's JU3Y3I: a 3 and an I joined by a
# sticker's edge two pixels high in text 60 high), not two glyphs run together by blur (S3P7IU: its I and U
# share 39 of 60 rows at their thinnest)
BRIDGE = 0.1


def columns(probs: np.ndarray) -> list[tuple[str, float]]:
    """The greedy CTC path collapsed to characters, each with the centre of its columns."""
    best = [int(c) for c in probs.argmax(1)] + [ocr.PAD]
    out: list[tuple[str, float]] = []
    prev, start = ocr.PAD, 0
    for t, c in enumerate(best):
        if c != prev:
            if prev != ocr.PAD:
                out.append((ocr.CHARSET[prev], (start + t - 1) / 2))
            start = t
        prev = c
    return out


def aligned(probs: np.ndarray, text: str) -> list[tuple[str, float]]:
    """The columns of `text` forced onto the CTC probabilities (the Viterbi path through text's characters
    with blanks between), each character with the centre of its columns: where the greedy path reads
    another length than the vote's text (a glyph dropped or doubled), its glyphs are still placed.
    Empty when the text cannot fit the columns."""
    labels = [ocr.PAD]
    for ch in text:
        labels += [ocr.CHARSET.index(ch), ocr.PAD]
    t_len, s_len = probs.shape[0], len(labels)
    if not text or t_len < len(text):
        return []
    lp = np.log(np.clip(probs[:, labels], 1e-12, None))  # T x S
    lab = np.array(labels)
    skip = np.zeros(s_len, bool)  # s may come from s-2: a character after a blank, unless it repeats
    skip[2:] = (lab[2:] != ocr.PAD) & (lab[2:] != lab[:-2])
    score = np.full(s_len, -np.inf)
    score[:2] = lp[0, :2]
    back = np.zeros((t_len, s_len), np.int8)  # steps back: 0, 1 or 2 states
    for t in range(1, t_len):
        stay, one = score, np.concatenate(([-np.inf], score[:-1]))
        two = np.where(skip, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        cand = np.stack([stay, one, two])
        back[t] = cand.argmax(0)
        score = cand.max(0) + lp[t]
    s = s_len - 1 if score[-1] >= score[-2] else s_len - 2  # the path ends on the last character or after it
    if not np.isfinite(score[s]):
        return []
    spans: dict[int, list[int]] = {}
    for t in range(t_len - 1, -1, -1):
        if labels[s] != ocr.PAD:
            spans.setdefault(s // 2, []).append(t)
        s -= int(back[t, s])
    return [(ch, (min(spans[i]) + max(spans[i])) / 2) for i, ch in enumerate(text)]


def _components(crop: np.ndarray, band: tuple[int, int] | None = None, local: bool = False,
                strict: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected components (x, y, w, h, area rows, and the label image, label k + 1 on row k) of the crop resized to SCALE x the OCR input and
    binarised (Otsu) both ways round: dark ink on a light plate, then light ink on a dark one. With
    `band` (x from, x to, at that scale) the threshold is Otsu's over the middle half of the crop's
    height between those columns alone: the characters and the plate between them, not the glare,
    the vehicle or the frame the crop also holds. With `local`, each pixel against the Gaussian mean of
    its LOCAL_BLOCK neighbourhood (a shadow's edge across the plate splits any one threshold). With
    `strict` (and `band`), the threshold moved STRICT of the way from Otsu's level to the ink's mean."""
    w, h = ocr.OCR_W * SCALE, ocr.OCR_H * SCALE
    g = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    g = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA if g.shape[1] > w else cv2.INTER_LINEAR)
    level, inner = 0.0, np.empty(0)
    if band is not None:
        x0, x1 = max(0, band[0]), min(w, band[1])
        if x1 - x0 < 8:
            return []
        inner = np.ascontiguousarray(g[h // 4: 3 * h // 4, x0:x1])
        level, _ = cv2.threshold(inner, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out = []
    for mode in (cv2.THRESH_BINARY_INV, cv2.THRESH_BINARY):
        if local:
            ink = cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, mode, LOCAL_BLOCK, LOCAL_C)
        elif band is None:
            _, ink = cv2.threshold(g, 0, 255, mode + cv2.THRESH_OTSU)
        else:
            at = level
            if strict:  # part way from Otsu's level to the ink's mean: blur that joins two glyphs stays paper
                side = inner[inner < level] if mode == cv2.THRESH_BINARY_INV else inner[inner > level]
                at = level + STRICT * (float(side.mean()) - level) if side.size else level
            _, ink = cv2.threshold(g, at, 255, mode)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        out.append((stats[1:], labels))
    return out


def glyph_widths(crop: np.ndarray, cols: list[tuple[str, float]], frames: int) -> list[int | None]:
    """Width in pixels (at SCALE x the OCR input) of the glyph under each character's columns, or None.

    Glyphs are the components of character height under a character's column; the polarity
    under which more characters find one of the common height wins. A component that touches the
    crop's left or right edge measures nothing: it runs on into what the crop cut off (a shadow, dirt,
    the plate's edge), and the dark ink run into it reads wider than the glyph (the road's 0ENX243, a
    0 at 1.46 times its digits with a shadow beside it, was settled as an O); nor does one under two
    characters' columns, glyphs run together.
    """
    px = ocr.OCR_W * SCALE / frames  # input pixels per CTC column
    best: tuple[int, list[int | None]] = (0, [None] * len(cols))
    for stats, _ in _components(crop):
        hits = _tallest_under([stats[k] for k in _character_sized(stats)], cols, px)
        # one component under two characters' columns is glyphs run together (the road's EN8VO6I: its O and 6
        # one blob measured 0.83 of the 8, itself run into E and N): it measures neither
        at = [(int(s[0]), int(s[1])) if s is not None else None for s in hits]
        hits = [s if s is not None and at.count(at[j]) == 1 else None for j, s in enumerate(hits)]
        heights = [s[3] for s in hits if s is not None]
        if not heights:
            continue
        common = float(np.median(heights))
        widths = [int(s[2]) if s is not None and abs(s[3] - common) < 0.2 * common else None for s in hits]
        found = sum(v is not None for v in widths)
        if found > best[0]:
            best = (found, widths)
    return best[1]


def _runs(labels: np.ndarray, label: int, s: np.ndarray) -> tuple[float, float]:
    """A component's ink per pixel row: the median and the 95th percentile (a bar's are alike, whatever its
    slant; a 1's flag or foot, an I's serifs widen a fifth of its rows or more)."""
    x, y, w, h = (int(v) for v in s[:4])
    counts = (labels[y: y + h, x: x + w] == label).sum(1)
    return float(np.median(counts)), float(np.percentile(counts, 95))


@dataclasses.dataclass(frozen=True)
class Row:
    """The plate's glyphs left to right (components x, y, w, h, area, whether its ink runs on past the
    line of text, median and 95th percentile ink per pixel row (`_runs`), its label in `labels`; of the
    characters' common height) and, for each column asked about, the glyph under it (None where none is).
    `labels` is the components' label image, cut to the line of text (rows `top` to `bottom`); `ink` the
    binarised crop before the cut, by which `spills` tells ink running on past the line."""

    glyphs: list[np.ndarray]
    hits: list[np.ndarray | None]
    labels: np.ndarray | None = None
    ink: np.ndarray | None = None
    top: int = 0
    bottom: int = 0
    common: float = 0.0

    def spills(self, label: int, x0: int, x1: int) -> bool:
        """Whether component `label`'s ink between columns x0 and x1 runs on past the line of text, above
        or below it (`_runs_on`)."""
        assert self.labels is not None and self.ink is not None
        a, b = self.top, self.bottom
        return (a > 0 and self._runs_on(self.ink[a - 1], self.labels[a], label, x0, x1)
                or b < self.ink.shape[0] and self._runs_on(self.ink[b], self.labels[b - 1], label, x0, x1))

    @staticmethod
    def _runs_on(beyond: np.ndarray, edge: np.ndarray, label: int, x0: int, x1: int) -> bool:
        """Whether the ink of the row just past the line (`beyond`) that touches the glyph's edge row goes on
        within the glyph's own columns (two pixels either side): the glyph is a line crossing the text (the
        plate's edge, a frame's upright). Ink that touches it and reaches wider rests on it (a sticker's
        edge, a bolt): the road's JU3Y3I, an I under a sticker."""
        on = np.flatnonzero(beyond[x0:x1] & (edge[x0:x1] == label)) + x0
        if not on.size:
            return False
        own = np.flatnonzero(edge[x0:x1] == label) + x0
        lo, hi = int(on.min()), int(on.max())
        while lo > 0 and beyond[lo - 1]:
            lo -= 1
        while hi + 1 < beyond.size and beyond[hi + 1]:
            hi += 1
        return lo >= own.min() - 2 and hi <= own.max() + 2

    def split(self, s: np.ndarray, keep_x: float, side: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Glyph `s` cut in two where it is joined by a bridge (a sticker's edge, a smear) on the `side` of
        the column keep_x (its own character's; +1: to its right, -1: to its left): the columns there where
        its ink fills no more than BRIDGE of the text's height, with ink of half the text's height on
        both sides of them, cut away; the part holding keep_x and the other, each as a glyph of
        `Row.glyphs` (its ink's box, area, spill and `_runs`); or None where no column is that thin
        (glyphs run together over more rows say nothing)."""
        assert self.labels is not None
        x, y, w, h = (int(v) for v in s[:4])
        label = int(s[-1])
        mask = self.labels[y: y + h, x: x + w] == label
        ink = mask.sum(0)
        stroke = 0.5 * self.common
        before = np.maximum.accumulate(ink) >= stroke  # a stroke at or left of each column
        after = np.maximum.accumulate(ink[::-1])[::-1] >= stroke
        k = min(max(int(round(keep_x)) - x, 0), w - 1)
        inside = np.zeros(w, bool)
        inside[1: w - 1] = before[: w - 2] & after[2:]
        if side > 0:
            inside[: k + 1] = False
        else:
            inside[k:] = False
        if not inside.any():
            return None
        v = int(np.flatnonzero(inside)[np.argmin(ink[inside])])
        thin = BRIDGE * self.common
        if ink[v] > thin:
            return None
        a, b = v, v
        while a > 0 and ink[a - 1] <= thin:
            a -= 1
        while b + 1 < w and ink[b + 1] <= thin:
            b += 1
        parts = []
        for c0, c1 in ((0, a), (b + 1, w)):
            part = mask[:, c0:c1]
            if not part.any():
                return None
            rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
            box = np.array([x + c0 + cols[0], y + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1])
            area = int(part.sum())
            spill = self.spills(label, int(box[0]), int(box[0] + box[2]))
            parts.append(np.array([*box, area, spill, *_runs(self.labels, label, box), label], float))
        left, right = parts
        return (left, right) if side > 0 else (right, left)


def _under(stats: np.ndarray, labels: np.ndarray, cols: list[tuple[str, float]],
           px: float) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The components of character size not touching the crop's sides (with their `_runs`), and the
    tallest of them under each column."""
    tall = [np.append(stats[k], (*_runs(labels, k + 1, stats[k]), k + 1)) for k in _character_sized(stats)]
    return tall, _tallest_under(tall, cols, px)


def _character_sized(stats: np.ndarray) -> list[int]:
    """Indices of the components of character size (0.3 to 0.95 of the crop's height, under 0.3 of its
    width) that do not touch the crop's left or right side: those run on into what the crop cut off."""
    w, h = ocr.OCR_W * SCALE, ocr.OCR_H * SCALE
    return [k for k, s in enumerate(stats)
            if 0.3 * h <= s[3] <= 0.95 * h and s[2] < 0.3 * w and s[0] > 0 and s[0] + s[2] < w]


def _tallest_under(found: list[np.ndarray], cols: list[tuple[str, float]], px: float) -> list[np.ndarray | None]:
    """For each column, the tallest of the components `found` (rows x, y, w, h, ...) lying under it (two
    pixels' slack either side), or None."""
    hits: list[np.ndarray | None] = []
    for _, col in cols:
        x = (col + 0.5) * px
        under = [s for s in found if s[0] - 2 <= x <= s[0] + s[2] + 2]
        hits.append(max(under, key=lambda s: s[3]) if under else None)
    return hits


def glyph_row(crop: np.ndarray, cols: list[tuple[str, float]], frames: int) -> Row:
    """The glyphs of the crop, under the binarisation in which the columns `cols` find the most glyphs of
    one height: each polarity thresholded over the whole crop (as `glyph_widths` measures), over the band
    the columns span (a plate pasted on a bright car, or half in glare, thresholds apart from its own ink)
    and locally (a shadow's edge across it). The ink is cut to the rows the glyphs span before they are
    told apart: a sticker, a bolt or the frame touching two glyphs from above or below runs them into
    one. Unlike `glyph_widths` it keeps glyphs no column lies over: a bar the OCR's path passed over is
    one here. Components touching the crop's sides are none (they run on into what the crop cut off)."""
    w = ocr.OCR_W * SCALE
    px = w / frames
    best = Row([], [None] * len(cols))
    if not cols:
        return best
    band = (int(cols[0][1] * px - 0.04 * w), int((cols[-1][1] + 1) * px + 0.04 * w))
    found = 0
    variants = _components(crop) + _components(crop, band) + _components(crop, band, strict=True) \
        + _components(crop, local=True)
    for stats, labels in variants:
        _, hits = _under(stats, labels, cols, px)
        heights = [s[3] for s in hits if s is not None]
        if len(heights) < 2:
            continue
        # the height most glyphs share (a sticker run into two of them makes them taller, not the rest)
        common = float(max(sorted(heights), key=lambda v: sum(abs(u - v) < 0.2 * v for u in heights)))
        line = [s for s in hits if s is not None and abs(s[3] - common) < 0.2 * common]
        top, bottom = min(int(s[1]) for s in line), max(int(s[1] + s[3]) for s in line)
        cut = np.zeros(labels.shape, np.int32)
        _, cut[top:bottom], stats, _ = cv2.connectedComponentsWithStats(
            (labels[top:bottom] > 0).astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        stats = stats[1:].copy()
        stats[:, 1] += top
        # a component whose ink runs on past the rows cut (the plate's edge, a frame's upright or a bolt's
        # shadow crossing the line of text) is marked: no bar, whatever its height in the cut
        row = Row([], [], cut, labels > 0, top, bottom, common)
        spills = np.array([row.spills(k + 1, 0, cut.shape[1]) for k in range(len(stats))], np.int64).reshape(-1, 1)
        tall, hits = _under(np.hstack([stats, spills]), cut, cols, px)
        fits = lambda s: abs(s[3] - common) < 0.2 * common  # noqa: E731
        hits = [s if s is not None and fits(s) else None for s in hits]
        distinct = len({int(s[0]) for s in hits if s is not None})
        if distinct > found:
            found = distinct
            best = dataclasses.replace(row, glyphs=sorted((s for s in tall if fits(s)), key=lambda s: s[0]),
                                       hits=hits)
    return best


def text_height(crop: np.ndarray) -> float:
    """Median height of the crop's character-like components as a share of its height (0 when none).

    About 0.45 on a plate cut at its edges (us-crops-dev, crops-ar, crops-br: 95 % under 0.57), 0.72
    on one cut around its characters alone (scenes-ca's labelled boxes)."""
    w, h = ocr.OCR_W * SCALE, ocr.OCR_H * SCALE
    best: tuple[int, float] = (0, 0.0)
    for stats, _ in _components(crop):
        heights = [s[3] for s in stats if s[3] >= 0.25 * h and 0.02 * w <= s[2] < 0.3 * w]
        if len(heights) > best[0]:
            best = (len(heights), float(np.median(heights)) / h)
    return best[1]


class Glyphs:
    """One crop's glyphs under the OCR's greedy path, measured once: the per-crop checks below (the 0-to-O
    promotion, the widths a tracker pools) share the connected-component pass, their one real cost."""

    def __init__(self, crop: np.ndarray, probs: np.ndarray) -> None:
        self.crop, self.probs = crop, probs

    @cached_property
    def cols(self) -> list[tuple[str, float]]:
        return columns(self.probs)

    @cached_property
    def widths(self) -> list[int | None]:
        return glyph_widths(self.crop, self.cols, self.probs.shape[0])

    def bars(self, plate: str, first: int, last: int) -> bool:
        """Whether `plate`'s characters first..last (a run of Is) are drawn as that many bare bars (BAR_EVEN,
        BAR_NARROW against the median width of the plate's other glyphs) and nothing else, between the
        glyphs of their neighbours (the crop's sides at the plate's ends). Local, so a glyph run into
        another or lost to glare elsewhere on the plate spoils nothing; the neighbours are placed by
        `plate`'s columns forced onto the OCR's (`aligned`), the run by the glyphs alone: the path can
        pass over a bar beside another I and its forced column land on the neighbour. A neighbour whose
        glyph reaches over the run's column is cut free of it where a bridge joins them (`Row.split`)."""
        cols = aligned(self.probs, plate)
        if not cols:
            return False
        row = glyph_row(self.crop, cols, self.probs.shape[0])
        left = row.hits[first - 1] if first > 0 else None
        right = row.hits[last + 1] if last + 1 < len(plate) else None
        if first > 0 and left is None or last + 1 < len(plate) and right is None:
            return False
        merged = [id(s) for s in (left, right) if s is not None]
        # a neighbour whose glyph reaches over the run's column is cut where a bridge joins them
        xs = [(c + 0.5) * ocr.OCR_W * SCALE / self.probs.shape[0] for _, c in cols]
        cut: list[np.ndarray] = []
        if left is not None and left[0] + left[2] > xs[first]:
            parts = row.split(left, xs[first - 1], +1)
            if parts:
                left, other = parts
                cut.append(other)
        if right is not None and right[0] < xs[last]:
            parts = row.split(right, xs[last + 1], -1)
            if parts:
                right, other = parts
                cut.append(other)
        hits = [left if i == first - 1 else right if i == last + 1 else s for i, s in enumerate(row.hits)]
        ref = {int(s[0]): int(s[2]) for s, ch in zip(hits, plate) if s is not None and ch not in "I1"}
        if not ref:
            return False
        wide = float(np.median(list(ref.values())))
        reach = (last - first + 1) * 1.3 * wide  # where the plate ends the run: its bars and their gaps
        lo = float(left[0] + left[2]) if left is not None else float(right[0]) - reach
        hi = float(right[0]) if right is not None else lo + reach
        # by centres: a rolled plate's boxes overlap
        between = [s for s in row.glyphs if lo <= s[0] + s[2] / 2 <= hi and id(s) not in merged]
        between += [s for s in cut if lo <= s[0] + s[2] / 2 <= hi and abs(s[3] - row.common) < 0.2 * row.common]
        return len(between) == last - first + 1 and all(
            not s[5] and s[7] <= BAR_EVEN * s[6] and s[6] <= BAR_NARROW * wide for s in between)

    def widths_of(self, plate: str) -> list[int | None]:
        """The glyph widths under `plate`'s characters: the greedy path's where it has the plate's length,
        else those of the plate forced onto the columns (`aligned`)."""
        if len(self.cols) == len(plate):
            return self.widths
        cols = aligned(self.probs, plate)
        return glyph_widths(self.crop, cols, self.probs.shape[0]) if cols else []

    def ratios(self, plate: str, at: list[int], among: str = DIGITS, least: int = 1) -> dict[int, float]:
        """Each glyph at the positions `at` of `plate` with its width over the median width of the plate's
        other characters in `among` (default its digits 2-9 and 0; not at `at`), where both are measured
        and at least `least` of those others are."""
        widths = self.widths_of(plate)
        if not widths:
            return {}
        ref = [v for j, v in enumerate(widths) if v is not None and j not in at and plate[j] in among]
        if len(ref) < max(1, least):
            return {}
        median = float(np.median(ref))
        return {i: widths[i] / median for i in at if widths[i] is not None}


def prefer_wide_o(crop: np.ndarray, probs: np.ndarray, reading: ocr.Reading,
                  us_format_rules: bool = False, measured: Glyphs | None = None) -> ocr.Reading:
    """The reading with its first candidate that reads O where the top read has 0 promoted to the top
    (the two swap places and confidences) when every such glyph is WIDE; else the reading unchanged.
    With `us_format_rules` a top read in a US serial format is never traded for one in none (an
    Argentine NMM840's 0, run into the plate's frame, measured wide). `measured`: the crop's Glyphs,
    when another check measures them too."""
    top = reading.plate
    if "0" not in top or len(reading.candidates) < 2:
        return reading
    alts = []
    for k, cand in enumerate(reading.candidates[1:], 1):
        alt = cand.plate
        diff = [i for i, (a, b) in enumerate(zip(top, alt)) if a != b]
        if (len(alt) == len(top) and diff and all(top[i] == "0" and alt[i] == "O" for i in diff)
                and cand.confidence >= ALT_SHARE * reading.confidence
                and not (us_format_rules and ocr.in_us_format(top, numbers=True)
                         and not ocr.in_us_format(alt, numbers=True))):
            alts.append((k, diff))
    g = measured or Glyphs(crop, probs)
    for k, diff in alts:
        ratios = g.ratios(top, diff)
        if len(ratios) == len(diff) and all(WIDE <= v <= MERGED for v in ratios.values()):
            cands = list(reading.candidates)
            first, alt = cands[0], cands[k]
            cands[0] = dataclasses.replace(alt, confidence=first.confidence)
            cands[k] = dataclasses.replace(first, confidence=alt.confidence)
            return ocr.Reading(cands[0].plate, cands[0].confidence, cands)
    return reading


def round_widths(crop: np.ndarray, probs: np.ndarray, plate: str, measured: Glyphs | None = None) -> dict[int, float]:
    """Each O or 0 of `plate` (by position) with its glyph's width over the median width of the plate's
    other digits, where both are measured: the evidence a tracker pools over a vehicle's frames."""
    at = [i for i, ch in enumerate(plate) if ch in "O0"]
    if not at:
        return {}
    return {i: round(v, 3) for i, v in (measured or Glyphs(crop, probs)).ratios(plate, at).items()}


def letters_say(ratio: float) -> str | None:
    """What one glyph on a vehicle's fused plate with no other digit says against the plate's letters
    (`LETTER_REF`): "O" (LETTER_WIDE to MERGED times them), "0" (LETTER_NARROW or less) or nothing."""
    if LETTER_WIDE <= ratio <= MERGED:
        return "O"
    return "0" if ratio <= LETTER_NARROW else None


def rounds_say(g: Glyphs, plate: str) -> dict[int, tuple[str | None, str]]:
    """What each measured O or 0 of `plate` says on a vehicle's fused plate (by position): "O", "0" or
    None, and its reference, "digits" (`fused_say`) or, where no other digit is measured, "letters"
    (`letters_say`)."""
    at = [i for i, ch in enumerate(plate) if ch in "O0"]
    by_digits = g.ratios(plate, at)
    if by_digits:
        return {i: (fused_say(v), "digits") for i, v in by_digits.items()}
    return {i: (letters_say(v), "letters") for i, v in g.ratios(plate, at, LETTER_REF, least=2).items()}


def fused_say(ratio: float) -> str | None:
    """What one glyph measured on a vehicle's fused plate says: "O" (FUSED_WIDE to MERGED times the
    plate's digits), "0" (ROUND_NARROW or less) or nothing (between, or merged into a neighbour)."""
    if FUSED_WIDE <= ratio <= MERGED:
        return "O"
    return "0" if ratio <= ROUND_NARROW else None


def pooled_choice(leader: str, alt: str, seen: list[tuple[str, dict[int, float]]], min_frames: int) -> bool:
    """Whether a vehicle's frames, pooled, say `alt` where the vote says `leader`, the two differing only
    where the leader reads O and `alt` 0: the median of each such glyph's `round_widths` over the frames
    that read the leader's length is ROUND_NARROW or less, from at least `min_frames` frames. Plates that
    issue O draw it wider than 0, so a glyph narrower than the digits is no O. One frame's width is noisy
    (Otsu, blur, a neighbour run into the glyph); the median of forty is not. Not the other way: pooled
    over four simulated seeds, wide medians turned four right 0s into O for one O mended."""
    if len(alt) != len(leader):
        return False
    diff = [i for i, (a, b) in enumerate(zip(leader, alt)) if a != b]
    if not diff or any(leader[i] != "O" or alt[i] != "0" for i in diff):
        return False
    for i in diff:
        vals = [w[i] for plate, w in seen if len(plate) == len(leader) and i in w]
        if len(vals) < min_frames or float(np.median(vals)) > ROUND_NARROW:
            return False
    return True


def round_twins(a: str, b: str) -> bool:
    """Two texts that differ, and only where one reads O and the other 0."""
    return len(a) == len(b) and a != b and all(x == y or {x, y} == {"O", "0"} for x, y in zip(a, b))


def gained_i(leader: str, rival: str) -> list[int]:
    """Where `rival` holds one I more than the leader, beside another I (an II the leader reads as one I):
    that I's position; else empty. CTC writes a doubled letter only with a blank column between the two,
    and the path drops one (the road's B9NPHII read B9NPHI). Not an I for the leader's 1: real US dies
    draw 1 as a bare bar too (Massachusetts' 14CV10 holds two), so no glyph tells them apart; nor an I
    beside other letters, where a bar-shaped separator or the plate's edge would count as one (8 of 2,601
    Is put beside other glyphs of us-crops-dev's right texts passed the bar count: benchmarks/real_glyphs.py)."""
    if len(rival) != len(leader) + 1:
        return []
    return [i for i in range(len(rival)) if rival[i] == "I" and rival[:i] + rival[i + 1:] == leader
            and "I" in (rival[i - 1: i] + rival[i + 1: i + 2])][:1]


def i_run(text: str, i: int) -> tuple[int, int]:
    """The first and last position of the run of Is in `text` that holds position i."""
    a = b = i
    while a > 0 and text[a - 1] == "I":
        a -= 1
    while b + 1 < len(text) and text[b + 1] == "I":
        b += 1
    return a, b


def bar_choice(g: Glyphs, leader: str, rivals: list[str]) -> str | None:
    """The first of `rivals` that holds one I of an II the leader reads as one I (`gained_i`), where the
    glyphs of a vehicle's fused plate draw that run of Is as that many bare bars (`Glyphs.bars`); or None.
    Only towards more Is: a glyph missing may be one run into its neighbour, so no count proves an I
    doubled."""
    for r in rivals:
        if any(g.bars(r, *i_run(r, i)) for i in gained_i(leader, r)):
            return r
    return None


def fused_asks(voted: list[str]) -> bool:
    """Whether a vehicle's fused plate has a question to settle in its vote (`voted`, the leader first):
    the second or third text is the leader's O/0 twin (`round_twins`) or holds an II the leader reads as
    one I (`gained_i`). Fusing costs tens of milliseconds, so only such passes are fused."""
    lead = voted[0] if voted else ""
    return any(round_twins(lead, t) or gained_i(lead, t) for t in voted[1:3])


def fused_choice(g: Glyphs, voted: list[str]) -> str | None:
    """The text the glyphs of a vehicle's fused plate (recognition.fusion) say among the texts its frames
    voted for (`voted`, the leader first), where the second or third is the leader's O/0 twin or holds an
    II the leader reads as one I (`gained_i`);
    None where they say the leader or nothing. O against 0: each O or 0 of the leader measured once
    (`rounds_say`), the text they spell, where some frame voted for it. The II: `bar_choice`."""
    if len(voted) < 2:
        return None
    lead, rivals = voted[0], voted[1:3]
    if any(round_twins(lead, r) for r in rivals):
        said = list(lead)
        for i, (ch, _) in rounds_say(g, lead).items():
            said[i] = ch or said[i]
        text = "".join(said)
        if text != lead and text in voted:
            return text
    return bar_choice(g, lead, rivals)
