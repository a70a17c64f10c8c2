"""Plate OCR pre- and post-processing shared by every runtime and by training.

The OCR network reads a grey 64x192 crop (64x128 until 0.8.0) into a fixed number of character
slots (a classifier per slot over 0-9, A-Z and a pad symbol), like
fast-plate-ocr, instead of CTC: stacked characters and two-row plates then
read in order without segmentation. Slots are independent given the image, so
the exact top-N texts come from a small beam over the slots, and confidences
are calibrated with a temperature fitted on held-out crops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from firmware.records import Candidate

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PAD = len(CHARSET)  # class index of the empty slot
SLOTS = 8
OCR_H, OCR_W = 64, 192
MAX_BATCH = 32  # crops per OCR run: the runtimes read at most this many at once (TensorRT's profile)

# Common US serial formats (@ letter, # digit) used as an optional prior.
US_FORMATS = ["#@@@###", "@@@####", "@@@###", "###@@@", "@@#####", "##@@###", "#@@####", "@@@@###",
              "###@###", "@######", "@@####", "####@@", "@##@@@",
              "@@#@#@",   # Missouri AB1 C2D
              "#@@###",   # Massachusetts 1AB 234
              "@###@@",   # Utah A12 3BC
              "@@@@##",   # Florida and Colorado ABC D12
              "#@#####"]  # California commercial 1A23456 (12 of scenes-ca's 246 plates)
# Serials of digits alone: 42 of us-crops-dev's 375 plates (Delaware, Rhode Island, New Hampshire, Illinois,
# Hawaii, Virginia, Vermont, ...). Ranked by the prior like the formats above, so that a lone I or O read
# among digits loses to the digit (NH 2470410 read 24704I0); never enough on their own for a weak detection to
# count as a plate (`in_us_format(numbers=False)`): a sign's number reads as digits too
US_NUMBER_FORMATS = ["####", "#####", "######", "#######"]
# How much likelier a text in a common US serial format is taken to be than one in none (the format prior):
# 4 rather than 2 ranks a formatted read above an extra or missing character's (DVK0943 over DVK01943) and a
# letter in its formatted place (W772UQ over W772U0); measured in docs/recognition.md
US_FORMAT_WEIGHT = 4.0


def normalise(text: str) -> str:
    """The scoring convention: upper case, only A-Z and 0-9."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """BGR or grey uint8 crops -> float32 batch N x 1 x OCR_H x OCR_W in [0, 1]."""
    batch = np.empty((len(crops), 1, OCR_H, OCR_W), np.float32)
    for i, c in enumerate(crops):
        g = cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) if c.ndim == 3 else c
        batch[i, 0] = cv2.resize(g, (OCR_W, OCR_H), interpolation=cv2.INTER_AREA if g.shape[1] > OCR_W else cv2.INTER_LINEAR)
    batch *= 1.0 / 255.0
    return batch


def encode(text: str) -> np.ndarray:
    """Label for training: one class index per slot, left aligned, pad after."""
    t = normalise(text)
    if not 0 < len(t) <= SLOTS:
        raise ValueError(f"plate text must have 1 to {SLOTS} characters: {text!r}")
    out = np.full(SLOTS, PAD, np.int64)
    out[: len(t)] = [CHARSET.index(ch) for ch in t]
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def char_confidence(probs: np.ndarray) -> float:
    """Mean best-character probability over the columns (or slots) whose best class is a character.

    A text's probability shrinks with every character and every near-tie in its
    spelling; this says how surely each character was seen, which is what tells
    a far plate read right-but-unsure from a grille or sign read as noise."""
    best = probs.max(-1)[probs.argmax(-1) != PAD]
    return float(best.mean()) if len(best) else 0.0


@dataclass(frozen=True)
class Reading:
    plate: str
    confidence: float
    candidates: list[Candidate]


def decode(probs: np.ndarray, top_n: int = 5, beam: int = 12, us_format_rules: bool = False) -> Reading:
    """Exact top-N texts from one crop's slot probabilities (SLOTS x classes).

    A beam over slots keeps the likeliest label sequences; pads are dropped
    when a sequence is turned into text and sequences that give the same text
    add up. With `us_format_rules`, texts matching a common US serial format
    are preferred (their probability is multiplied by US_FORMAT_WEIGHT before renormalising).
    """
    seqs: list[tuple[float, tuple[int, ...]]] = [(1.0, ())]
    k = max(beam, top_n)
    for s in range(probs.shape[0]):
        p = probs[s]
        top = np.argsort(p)[::-1][:4]
        nxt = [(sp * float(p[c]), seq + (int(c),)) for sp, seq in seqs for c in top]
        nxt.sort(key=lambda x: -x[0])
        seqs = nxt[:k]
    texts: dict[str, float] = {}
    empty = 0.0
    for sp, seq in seqs:
        t = "".join(CHARSET[c] for c in seq if c != PAD)
        if t:
            texts[t] = texts.get(t, 0.0) + sp
        else:
            empty += sp
    return _rank(texts, empty, top_n, us_format_rules)


def decode_ctc(probs: np.ndarray, top_n: int = 5, beam: int = 10, us_format_rules: bool = False) -> Reading:
    """Top-N texts from one crop's per-column probabilities (T x classes, PAD = blank).

    CTC prefix beam search: a text's probability is summed over all the
    alignments that collapse to it, so it is a real probability of the text
    (what the temperature calibrates). Only characters above 1e-3 in a column
    are expanded, which keeps it fast.
    """
    # Python floats and one vectorised sort: half the time of per-column numpy calls
    order = np.argsort(-probs, axis=1)[:, :5].tolist()
    beams: dict[str, list[float]] = {"": [1.0, 0.0]}  # text -> [p ending in blank, p ending in a char]
    for p, top in zip(probs.tolist(), order):
        blank = p[PAD]
        chars = [c for c in top if c != PAD and p[c] > 1e-3]
        if not chars:  # a blank column: every text just ends in a blank now
            beams = {t: [(pb + pnb) * blank, 0.0] for t, (pb, pnb) in beams.items()}
            continue
        nxt: dict[str, list[float]] = {}
        for text, (pb, pnb) in beams.items():
            e = nxt.setdefault(text, [0.0, 0.0])
            e[0] += (pb + pnb) * blank
            last = text[-1] if text else ""
            for c in chars:
                ch, pc = CHARSET[c], p[c]
                if ch == last:
                    e[1] += pnb * pc                      # the same character continues
                    ext = nxt.setdefault(text + ch, [0.0, 0.0])
                    ext[1] += pb * pc                     # a doubled character needs a blank between
                else:
                    ext = nxt.setdefault(text + ch, [0.0, 0.0])
                    ext[1] += (pb + pnb) * pc
        beams = dict(sorted(nxt.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:beam])
    empty = sum(beams.get("", [0.0, 0.0]))
    texts = {t: pb + pnb for t, (pb, pnb) in beams.items() if t}
    return _rank(texts, empty, top_n, us_format_rules)


def _rank(texts: dict[str, float], empty: float, top_n: int, us_format_rules: bool) -> Reading:
    """Both decoders end here: no read when "nothing legible" is likeliest; otherwise the
    top-N texts, after the optional US format prior (US_FORMAT_WEIGHT times the weight of texts in a
    common serial format while keeping the total probability)."""
    if not texts or empty > max(texts.values()):
        return Reading("", 0.0, [])
    if us_format_rules:
        total = sum(texts.values())
        texts = {t: v * (US_FORMAT_WEIGHT if in_us_format(t, numbers=True) else 1.0) for t, v in texts.items()}
        scale = total / sum(texts.values())
        texts = {t: v * scale for t, v in texts.items()}
    ranked = sorted(texts.items(), key=lambda kv: -kv[1])[:top_n]
    cands = [Candidate(t, float(min(1.0, v))) for t, v in ranked]
    return Reading(cands[0].plate, cands[0].confidence, cands)


DECODERS = {"slots": decode, "ctc": decode_ctc}


def second_views(crop: np.ndarray, outer: np.ndarray | None = None) -> list[np.ndarray]:
    """Two more framings of a plate crop for a second look: zoomed in, and padded out (or
    `outer`, the plate cut looser from its frame, where there is one).

    The OCR is sensitive to how tightly a plate is framed (a frame edge, a
    sticker or a bolt at the border becomes a character); reading the same
    plate framed three ways and pooling the texts fixes most of those misreads
    (us-crops-dev validation half 0.897 -> 0.944, crops-ar 0.721 -> 0.782 with
    OCR 0.3.0; docs/recognition.md).
    """
    h, w = crop.shape[:2]
    dx, dy = max(1, int(w * 0.04)), max(1, int(h * 0.06))
    zoomed = crop[dy: h - dy, dx: w - dx] if h > 2 * dy + 4 and w > 2 * dx + 8 else crop
    if outer is not None and outer.shape[0] > h and outer.shape[1] > w:
        return [zoomed, outer]
    padded = cv2.copyMakeBorder(crop, dy, dy, dx, dx, cv2.BORDER_REPLICATE)
    return [zoomed, padded]


def framed_out(crop: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """The crop with a border of `fx` of its width at each side and `fy` of its height above and below,
    in the median colour of its edge pixels: the plate face around characters cut too tightly (a
    replicated edge smears the characters' strokes into the border; a flat plate colour does not)."""
    h, w = crop.shape[:2]
    edge = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]).reshape(-1, *crop.shape[2:])
    colour = np.median(edge, axis=0)
    value = [int(v) for v in np.atleast_1d(colour)]
    px, py = int(round(fx * w)), int(round(fy * h))
    return cv2.copyMakeBorder(crop, py, py, px, px, cv2.BORDER_CONSTANT, value=value)


ROLL_LOOK_DEGREES = (10.0, 16.0)  # the roll look's turns (docs/recognition.md: rolled plates)


def unrolled_views(crop: np.ndarray) -> list[np.ndarray]:
    """The crop of a plate rolled in the image, turned back by each of ROLL_LOOK_DEGREES either way.

    The detector's box is axis-aligned, so a rolled plate's crop holds it on a slant
    with a wedge of car above and below. Turned back by the right angle, the plate
    lies level in the middle; the plate's own width and height follow from the box's
    (w = W cos a + H sin a for the box, solved for the plate), and the view is cut to
    them. Angles a box that shape cannot hold a plate at (aspect under 1.3) are skipped.
    """
    h, w = crop.shape[:2]
    views = []
    for deg in ROLL_LOOK_DEGREES:
        t = np.radians(deg)
        c, s = float(np.cos(t)), float(np.sin(t))
        det = c * c - s * s
        pw, ph = (w * c - h * s) / det, (h * c - w * s) / det
        if pw < 8 or ph < 4 or pw / ph < 1.3:
            continue
        x0, y0 = int(max(0, (w - pw) / 2)), int(max(0, (h - ph) / 2))
        for sign in (1, -1):
            M = cv2.getRotationMatrix2D((w / 2, h / 2), sign * deg, 1.0)
            turned = cv2.warpAffine(crop, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            views.append(turned[y0: h - y0, x0: w - x0])
    return views


def fuse(probs: list[np.ndarray], decoder, top_n: int = 5, us_format_rules: bool = False,
         per_view: int = 10) -> Reading:
    """One reading from several views of one plate: each text's probability averaged over the views.

    A text missing from a view's top `per_view` counts as 0 there, so a text
    must be likely in most views to win; the format prior is applied once, after pooling.
    """
    pooled: dict[str, float] = {}
    for p in probs:
        for c in decoder(p, per_view).candidates:
            pooled[c.plate] = pooled.get(c.plate, 0.0) + c.confidence / len(probs)
    return _rank(pooled, 0.0, top_n, us_format_rules)


def _shape(text: str) -> str:
    return "".join("#" if c.isdigit() else "@" for c in text)


# US state and territory names as a plate prints them above or below the serial, up to SLOTS letters
# (longer ones cannot be read whole, and their cut reads are the tracker's `_cut` frames): a read that is
# one of them is the plate's legend, not its registration (the simulated road's FLORIDA phantom)
US_STATE_NAMES = frozenset({
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "COLORADO", "DELAWARE", "FLORIDA", "GEORGIA", "HAWAII", "IDAHO",
    "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY", "MAINE", "MARYLAND", "MICHIGAN", "MISSOURI", "MONTANA",
    "NEBRASKA", "NEVADA", "NEWYORK", "OHIO", "OKLAHOMA", "OREGON", "TEXAS", "UTAH", "VERMONT", "VIRGINIA",
    "WYOMING", "GUAM"})


def is_state_name(text: str) -> bool:
    """True when the read is a US state's (or territory's) name: a legend, not a serial."""
    return text in US_STATE_NAMES


def in_us_format(text: str, numbers: bool = False) -> bool:
    """True when the text's letter/digit pattern is a common US serial format (US_FORMATS), or with `numbers`
    also a serial of digits alone (US_NUMBER_FORMATS)."""
    shape = _shape(text)
    return shape in US_FORMATS or numbers and shape in US_NUMBER_FORMATS
