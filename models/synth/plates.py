"""Synthetic US-style licence plates with their text, for OCR and detector training
and for the simulated road.

Real labelled US plates are scarce (a few hundred), so most OCR training images
come from here: plate-like fonts (Debian font packages plus OpenCV's stroke
fonts, which lack the serifs and feet of desktop fonts, like real plate dies),
squeezed and spaced like plates, on backgrounds cut from DMV designs (their
sample text inpainted away) or plain coloured plates with state names, slogans,
stickers, bolts, dealer frames, pictures between and beside the characters and
small stacked side codes (county, vehicle type) that must NOT be read; small
characters stacked inside the registration, read in order; then perspective, blur, dirt, shadow,
glare, low light, JPEG loss and the near-infrared monochrome look of a pole at
night.

`render_plate(rng)` is the one entry point; everything else is a helper.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
PLATE_W, PLATE_H = 320, 160

from models import DATASETS  # noqa: E402

FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/truetype/freefont/FreeMonoBold.ttf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Regular.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSans-Bold.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Bold.otf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
]
# Plate-die lookalikes: US dies are condensed gothics close to the FHWA highway alphabets that
# Roadgeek replicates (series B-E), DIN 1451 (OSP-DIN) and routed engraving letters. Drawn for a
# `die_font_share` of plates, squeezed to a die's proportions (DIE_ASPECT) rather than by SQUEEZE.
DIE_FONT_FILES = [
    "/usr/share/fonts/truetype/roadgeek/RG2014B.ttf",
    "/usr/share/fonts/truetype/roadgeek/RG2014C.ttf",
    "/usr/share/fonts/truetype/roadgeek/RG2014D.ttf",
    "/usr/share/fonts/truetype/roadgeek/RG2014E.ttf",
    "/usr/share/fonts/truetype/opendin/OSP-DIN.ttf",
    "/usr/share/fonts/truetype/routed-gothic/routed-gothic-narrow.ttf",
]
DIE_ASPECT = (0.4, 0.62)  # width / height of a die's 0 (US dies: about 1.2 by 2.75 inches, some wider)
FRAME_MAX_SIDE = 12  # px of a dealer frame's sides over the plate face; the text keeps clear of them
PICTURE_GAP = 6  # px at least between a picture beside the text and the nearest character
# px at least between the text and the plate's sides: clear of the widest dealer frame by a gap, as dies leave
# a margin (5.6 % of the width). Flush against a dark frame, a leading I was one bar with it (the simulated
# road's IWZ1553, IADOQ9, IV8ZVKG, read without their I in every frame): a label no reader could earn.
TEXT_MARGIN = FRAME_MAX_SIDE + 6
# Horizontal scale of the glyphs: plate dies are condensed, the fonts here mostly are not.
SQUEEZE = (0.5, 1.05)
STACK_SHARE = 0.03  # plates with two small characters stacked inside the registration (read in order)
# Extra stroke (px at 96 px cap height) drawn around glyphs: desktop fonts weighted to none;
# OpenCV stroke fonts any of 0-3. `_font_choice` draws from these, `warm_glyph_cache` renders them all.
FONT_BOLD = (0, 0, 1, 2)
HERSHEY_BOLD = range(4)
# OpenCV stroke fonts: (font id, stroke thickness as a fraction of glyph height)
HERSHEY = [(cv2.FONT_HERSHEY_SIMPLEX, 0.11), (cv2.FONT_HERSHEY_DUPLEX, 0.12), (cv2.FONT_HERSHEY_SIMPLEX, 0.16),
           (cv2.FONT_HERSHEY_PLAIN, 0.14), (cv2.FONT_HERSHEY_COMPLEX, 0.09)]

STATES = ["ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "California", "COLORADO", "CONNECTICUT", "DELAWARE",
          "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "Indiana", "IOWA", "KANSAS", "KENTUCKY",
          "Louisiana", "MAINE", "Maryland", "MASSACHUSETTS", "MICHIGAN", "Minnesota", "MISSISSIPPI", "MISSOURI",
          "MONTANA", "NEBRASKA", "NEVADA", "New Hampshire", "New Jersey", "NEW MEXICO", "NEW YORK",
          "NORTH CAROLINA", "NORTH DAKOTA", "OHIO", "OKLAHOMA", "Oregon", "Pennsylvania", "RHODE ISLAND",
          "SOUTH CAROLINA", "SOUTH DAKOTA", "Tennessee", "TEXAS", "UTAH", "VERMONT", "VIRGINIA", "WASHINGTON",
          "West Virginia", "WISCONSIN", "WYOMING"]
SLOGANS = ["Garden State", "Famous Potatoes", "Land of Lincoln", "Vacationland", "SHOW-ME STATE",
           "Sunshine State", "Live Free or Die", "America's Dairyland", "Empire State", "dmv.ca.gov",
           "THE SILVER STATE", "Great Faces Great Places", "Wild Wonderful", "In God We Trust",
           "Celebrating Statehood", "Peach State", "Lone Star State", "First in Flight", "Land of Enchantment",
           "Centennial", "Sportsman's Paradise", "Aloha State", "Explore", "Pride", "The Natural State"]

# Formats seen on US plates: @ letter, # digit, ? either. Weighted to 6-7 characters.
FORMATS = [("#@@@###", 6), ("@@@####", 6), ("@@@###", 5), ("###@@@", 4), ("@@#####", 2), ("##@@###", 2),
           ("#@@####", 2), ("@###@@", 1), ("@@@@###", 2), ("###@###", 1), ("######", 1), ("@######", 1),
           ("@@####", 1), ("##@@##", 1), ("####@@", 2), ("@@@##@", 1), ("@##@@@", 1), ("???????", 3),
           ("??????", 2), ("?????", 2), ("????", 1), ("???", 1), ("????????", 1), ("##", 0.3), ("#", 0.2),
           ("@@@@@@@", 1), ("@@@@@", 1), ("@@#@#@", 2), ("#@@###", 1), ("@@@@##", 1)]


@dataclass
class _Design:
    image: np.ndarray  # BGR, PLATE_H x PLATE_W, sample text inpainted


# Serial letters are not drawn evenly: many states leave I, O and Q out of their sequential serials
# (they read as 1 and 0). In the real US crops and scenes (us-crops-dev, scenes-ca labels) O is about
# 1/5 as common as the average letter, Q 1/3, I 1/2; vanity positions ('?') stay even.
SERIAL_LETTER_WEIGHT = {"O": 0.2, "Q": 0.35, "I": 0.5}
_SERIAL_P = np.array([SERIAL_LETTER_WEIGHT.get(ch, 1.0) for ch in LETTERS])
_SERIAL_P /= _SERIAL_P.sum()


def random_text(rng: np.random.Generator) -> str:
    """A plate text in a common US format (or a vanity text)."""
    fmts, weights = zip(*FORMATS)
    p = np.array(weights, float)
    fmt = fmts[rng.choice(len(fmts), p=p / p.sum())]
    out = []
    for c in fmt:
        if c == "@":
            out.append(LETTERS[rng.choice(26, p=_SERIAL_P)])
        elif c == "#":
            out.append(DIGITS[rng.integers(10)])
        else:
            out.append(CHARSET[rng.integers(36)])
    return "".join(out)


# Letters that read as a digit or as each other on a worn or small plate (O/Q/D against 0, I/T against 1, B against
# 8, E against F, S against 5, Z against 2, G against 6): a look-alike text puts them where the format wants a
# letter, beside digits that resemble them, so the network learns their shapes rather than the rarity prior.
LOOKALIKE_LETTERS = "OQDITBEFSZG"
LOOKALIKE_DIGITS = "0185260"


def lookalike_text(rng: np.random.Generator, share: float = 0.4, letters: str = LOOKALIKE_LETTERS,
                   digits: str = LOOKALIKE_DIGITS) -> str:
    """A plate text in a common US format (as `random_text`) whose letters and digits are each, with
    probability `share`, drawn from the look-alike sets (`letters`, `digits`); at least one look-alike
    letter when it has letters."""
    text = list(random_text(rng))
    at = [i for i, ch in enumerate(text) if ch.isalpha()]
    for i, ch in enumerate(text):
        if rng.random() < share:
            pool = letters if ch.isalpha() else digits
            text[i] = pool[rng.integers(len(pool))]
    if at and not any(text[i] in letters for i in at):
        text[at[rng.integers(len(at))]] = letters[rng.integers(len(letters))]
    return "".join(text)


def round_text(rng: np.random.Generator, share: float = 0.35, letters: str = "O") -> str:
    """A look-alike text of round glyphs alone (`letters`, O by default, and 0): every text with letters has
    one of `letters`, often beside a 0. The OCR under-calls O (its serials draw O a fifth as often as other
    letters, as US states issue them), so a vanity O in a font that draws it only a little wider than its 0
    is read 0; plates that carry both teach the width against the plate's own digits (`gen --round-share`).
    With `letters="QO"` a Q stands beside an O and a 0, so that its tail, a few pixels on a small plate,
    is what tells it from them (`gen --round-letters QO`: the simulated road's fresh seeds 9-16 read Q as O
    in 3 of OCR 0.8.0's 11 misses)."""
    return lookalike_text(rng, share, letters=letters, digits="0")


# Two like characters side by side need a blank CTC column between them; two thin bars (II) sit so close
# that OCR 0.7.0 read 71 of 190 clean plates with an II wrong, most with one I (11: 8 of 211; OO: read 0O or
# 00; benchmarks/glyph_check.py --doubled), and II is too rare in serials to be learnt. A doubled text repeats one character where it stands,
# the plate's own half the time, else an I or an O (DOUBLE_LETTERS).
DOUBLE_LETTERS = "IIIO"


def double_text(rng: np.random.Generator, chars: str = DOUBLE_LETTERS, own_share: float = 0.5) -> str:
    """A plate text in a common US format (as `random_text`) with one character written twice in a row:
    the one standing there with probability `own_share`, else one of `chars` (benchmarks/glyph_check.py
    asks for a letter or its look-alike digit only)."""
    text = list(random_text(rng))
    if len(text) < 2:
        return "".join(text * 2)
    i = int(rng.integers(len(text) - 1))
    ch = text[i] if rng.random() < own_share else chars[rng.integers(len(chars))]
    text[i] = text[i + 1] = ch
    return "".join(text)


@lru_cache(maxsize=None)
def _fonts() -> list[str]:
    return [f for f in FONT_FILES if os.path.exists(f)]


@lru_cache(maxsize=None)
def _die_fonts() -> list[str]:
    return [f for f in DIE_FONT_FILES if os.path.exists(f)]


@lru_cache(maxsize=4096)
def _glyph(font: str, ch: str, bold_px: int = 0) -> np.ndarray:
    """A tight grey mask (uint8) of one character, 96 px tall cap height."""
    if font.startswith("hershey:"):
        fid, thick = HERSHEY[int(font.split(":")[1])]
        scale = 96 / 22.0 if fid != cv2.FONT_HERSHEY_PLAIN else 96 / 11.0
        t = max(2, int(96 * thick)) + bold_px
        (w, h), base = cv2.getTextSize(ch, fid, scale, t)
        canvas = np.zeros((h + base + 2 * t + 8, w + 2 * t + 8), np.uint8)
        cv2.putText(canvas, ch, (t + 4, h + t + 4), fid, scale, 255, t, cv2.LINE_AA)
    else:
        from PIL import Image, ImageDraw

        f = _pil_font(font, 128)
        img = Image.new("L", (160, 180), 0)
        ImageDraw.Draw(img).text((16, 8), ch, font=f, fill=255, stroke_width=bold_px, stroke_fill=255)
        canvas = np.asarray(img)
    ys, xs = np.nonzero(canvas > 40)
    if len(ys) == 0:
        return np.zeros((96, 48), np.uint8)
    g = canvas[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    scale = 96 / g.shape[0]
    return cv2.resize(g, (max(4, int(round(g.shape[1] * scale))), 96), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=16)
def _open_four(thick: int) -> np.ndarray:
    """The open-top 4 of many US plate dies, which desktop fonts lack."""
    g = np.zeros((96, 64), np.uint8)
    t = 8 + 3 * thick
    cv2.line(g, (t // 2 + 2, 0), (t // 2 + 2, 62), 255, t)       # left stroke, top to the bar
    cv2.line(g, (0, 62), (63, 62), 255, t)                         # bar
    cv2.line(g, (46, 0), (46, 95), 255, t)                         # right stem, full height
    return g


def _toss(rng: np.random.Generator, share: float) -> bool:
    """A coin that lands true on `share` of plates, tossed only where the share leaves it open: a seed
    draws the plates it drew before the option existed, and the same plate at 0 and at 1."""
    return share >= 1.0 or (share > 0.0 and rng.random() < share)


def _stem(font: str, bold: int) -> int:
    """The ink width (px at 96 px cap height) of the font's upright stroke: the median row of its 1."""
    one = _glyph(font, "1", bold) > 127
    rows = one.sum(axis=1)
    return max(4, int(np.median(rows[rows > 0]))) if rows.any() else 10


@lru_cache(maxsize=256)
def _die_one(font: str, bold: int) -> np.ndarray:
    """A 1 drawn as a bare bar of the font's stroke, as Virginia's, Massachusetts' and New Hampshire's dies
    draw it (23 of us-crops-dev's 142 real 1s, `benchmarks/real_glyphs.py`)."""
    return np.full((96, _stem(font, bold)), 255, np.uint8)


@lru_cache(maxsize=256)
def _die_i(font: str, bold: int) -> np.ndarray:
    """An I with slab serifs top and bottom, as US dies draw it (none of us-crops-dev's 22 real Is is a bare
    bar), where most of the generator's fonts draw a bare bar."""
    stem = _stem(font, bold)
    w = max(3 * stem, int(0.5 * _glyph(font, "0", bold).shape[1]))
    t = max(3, int(0.75 * stem))
    g = np.zeros((96, w), np.uint8)
    g[:, (w - stem) // 2: (w - stem) // 2 + stem] = 255
    g[:t] = 255
    g[96 - t:] = 255
    return g


def warm_glyph_cache() -> int:
    """Render every glyph the generator can ask for (3,312 glyphs with the die fonts: 34 MB more
    RSS, 1.3 s, measured).

    The glyph cache fills as plates are drawn and stops growing when full; a
    memory benchmark warms it first so that what it sees growing is the
    pipeline, not the simulator's fonts."""
    fonts = ([(f, set(FONT_BOLD)) for f in _fonts() + _die_fonts()]
             + [(f"hershey:{i}", HERSHEY_BOLD) for i in range(len(HERSHEY))])
    for font, bolds in fonts:
        for ch in CHARSET:
            for bold in bolds:
                _glyph(font, ch, bold)
    return _glyph.cache_info().currsize


# Letters a plate font must tell from a digit. Monospaced and stroke fonts often draw O as a 0
# (DejaVu Sans Mono's overlap 0.85, OpenCV's duplex 0.77) or B as an 8: a label saying O on such a
# glyph is one no reader could earn, and teaches the OCR to guess. Real plates avoid it: states
# that issue these letters use dies that set them apart (O wider and round), the others leave them out.
# Letter -> (digit, overlap above which they cannot be told apart). B and 8 share two bowls in
# every font, and what sets them apart (B's straight stem) is little area, so B's bar is higher.
LOOKALIKE = {"O": ("0", 0.7), "Q": ("0", 0.7), "I": ("1", 0.7), "B": ("8", 0.8)}
# An O and a 0 of one shape are told apart by width alone, so the O must be clearly the wider: at least
# this many times its 0's width. The desktop fonts that pass the overlap bar draw it 1.23-1.49 times as
# wide; OpenCV's stroke fonts draw one oval 1.10-1.13 times (their overlap, 0.63-0.78 by stroke, is
# rasterisation noise around the bar: three of their twenty strokes passed it, and the simulated road's
# YIOJ0I drawn in one shows its O and 0 alike).
ROUND_MIN_WIDTH = {"O": 1.18}


def glyph_overlap(font: str, bold: int, a: str, b: str) -> float:
    """Intersection over union of two glyphs drawn at one height and centred on each other."""
    ga, gb = _glyph(font, a, bold), _glyph(font, b, bold)
    w = max(ga.shape[1], gb.shape[1])
    pa, pb = (np.pad(g, ((0, 0), ((w - g.shape[1]) // 2, w - g.shape[1] - (w - g.shape[1]) // 2))).astype(np.float32)
              for g in (ga, gb))
    return float(np.minimum(pa, pb).sum() / max(np.maximum(pa, pb).sum(), 1e-6))


@lru_cache(maxsize=None)
def ambiguous_letters(font: str, bold: int) -> frozenset[str]:
    """The LOOKALIKE letters this font (at this extra stroke) draws too like their digit to be told apart:
    overlapping it past the letter's bar, or (ROUND_MIN_WIDTH) not clearly wider than it."""
    return frozenset(ch for ch, (digit, bar) in LOOKALIKE.items()
                     if glyph_overlap(font, bold, ch, digit) > bar
                     or _glyph(font, ch, bold).shape[1] < ROUND_MIN_WIDTH.get(ch, 0.0) * _glyph(font, digit, bold).shape[1])


def _font_choice(rng: np.random.Generator, text: str = "", font_check: bool = True,
                 die_font_share: float = 0.0) -> tuple[str, int]:
    """A font and extra stroke for the registration, one that tells `text`'s letters from digits
    (any font when not `font_check`); a die lookalike (DIE_FONT_FILES) for `die_font_share` of plates."""
    # the coin is tossed only when a share is asked for, so that a seed's plates stay what they were
    if die_font_share and rng.random() < die_font_share:
        dies = _told_apart(_die_fonts(), text, font_check)
        if dies:
            return dies[rng.integers(len(dies))]
    fonts = _fonts()
    for _ in range(12):
        if rng.random() < 0.35 or not fonts:
            font, bold = f"hershey:{rng.integers(len(HERSHEY))}", int(rng.integers(0, len(HERSHEY_BOLD)))
        else:
            font, bold = fonts[rng.integers(len(fonts))], int(rng.choice(FONT_BOLD))
        if not font_check or not ambiguous_letters(font, bold) & set(text):
            return font, bold
    clear = _told_apart(fonts, text)
    return clear[rng.integers(len(clear))] if clear else (font, bold)


def _told_apart(fonts: list[str], text: str, font_check: bool = True) -> list[tuple[str, int]]:
    """Every (font, extra stroke) of `fonts` that tells `text`'s letters from their look-alike digits
    (every one when not `font_check`)."""
    return [(f, b) for f in fonts for b in sorted(set(FONT_BOLD))
            if not font_check or not ambiguous_letters(f, b) & set(text)]


# Colours of the pictures printed on US plates (fruit, hearts, badges, landmarks).
PICTURE_COLOURS = [(0, 140, 255), (0, 90, 230), (30, 30, 200), (40, 150, 40), (20, 110, 20), (160, 60, 20),
                   (0, 200, 240), (120, 40, 120), (90, 90, 90), (20, 20, 20), (200, 170, 60)]


@dataclass
class _Picture:
    x: int              # left edge, in the text mask's columns
    bgr: np.ndarray     # h x w x 3 uint8
    alpha: np.ndarray   # h x w float32 in [0, 1]


def _picture(rng: np.random.Generator, h: int, w: int, ink) -> tuple[np.ndarray, np.ndarray]:
    """A pictorial emblem (fruit, heart, star, badge, landmark, blob) that is not a character.

    US plates print such pictures between character groups (Georgia's peach,
    Florida's orange, "I (heart) LEGO") and beside the text (a cactus, a bird, a
    county seal); readers that have never seen one read it as O, 0, C or 4.
    """
    h, w = max(h, 6), max(w, 4)
    bgr = np.zeros((h, w, 3), np.uint8)
    a = np.zeros((h, w), np.uint8)
    colour = ink if rng.random() < 0.25 else PICTURE_COLOURS[rng.integers(len(PICTURE_COLOURS))]
    second = PICTURE_COLOURS[rng.integers(len(PICTURE_COLOURS))]
    cx, cy, r = w // 2, h // 2, max(2, min(w, h) // 2 - 1)
    kind = rng.choice(["fruit", "heart", "star", "badge", "landmark", "tree", "blob", "arch"])

    def fill(draw, col):
        m = np.zeros((h, w), np.uint8)
        draw(m)
        bgr[m > 0] = col
        np.maximum(a, m, out=a)

    if kind == "fruit":
        fill(lambda m: cv2.circle(m, (cx, cy + r // 8), int(r * 0.85), 255, -1, cv2.LINE_AA), colour)
        fill(lambda m: cv2.ellipse(m, (cx + r // 3, max(1, cy - int(r * 0.8))), (max(1, r // 2), max(1, r // 5)),
                                   -30, 0, 360, 255, -1, cv2.LINE_AA), (30, 140, 30))
    elif kind == "heart":
        def heart(m):
            rr = max(1, int(r * 0.5))
            cv2.circle(m, (cx - rr + 1, cy - rr // 2), rr, 255, -1, cv2.LINE_AA)
            cv2.circle(m, (cx + rr - 1, cy - rr // 2), rr, 255, -1, cv2.LINE_AA)
            pts = np.array([[cx - 2 * rr + 1, cy - rr // 4], [cx + 2 * rr - 1, cy - rr // 4], [cx, cy + int(r * 0.95)]])
            cv2.fillPoly(m, [pts.astype(np.int32)], 255, cv2.LINE_AA)
        fill(heart, colour if rng.random() < 0.5 else (30, 30, 200))
    elif kind == "star":
        k = int(rng.choice([5, 6, 8]))
        ang = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False) + rng.uniform(0, np.pi)
        rad = np.where(np.arange(2 * k) % 2 == 0, r, r * rng.uniform(0.35, 0.6))
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
        fill(lambda m: cv2.fillPoly(m, [pts], 255, cv2.LINE_AA), colour)
    elif kind == "badge":
        t = max(1, r // 6)
        if rng.random() < 0.5:
            fill(lambda m: cv2.circle(m, (cx, cy), r, 255, t, cv2.LINE_AA), colour)
        else:
            pts = np.array([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]], np.int32)
            fill(lambda m: cv2.polylines(m, [pts], True, 255, t, cv2.LINE_AA), colour)
        arm = max(1, int(r * 0.5))
        fill(lambda m: (cv2.line(m, (cx - arm, cy), (cx + arm, cy), 255, t + 1),
                        cv2.line(m, (cx, cy - arm), (cx, cy + arm), 255, t + 1)), colour)
    elif kind == "landmark":  # a lighthouse or tower: tapering body with stripes
        top, bot = max(1, int(w * 0.18)), max(2, int(w * 0.32))
        pts = np.array([[cx - top, 2], [cx + top, 2], [cx + bot, h - 2], [cx - bot, h - 2]], np.int32)
        fill(lambda m: cv2.fillPoly(m, [pts], 255), colour)
        stripe = max(1, h // 12)
        for y in range(int(h * 0.3), h - 2, max(3, h // 5)):
            rows = slice(y, y + stripe)
            bgr[rows][a[rows] > 0] = second
    elif kind == "tree":
        for k in range(3):
            y1 = int(h * (0.35 + 0.25 * k))
            half = int(w * (0.22 + 0.12 * k))
            pts = np.array([[cx, y1 - int(h * 0.35)], [cx + half, y1], [cx - half, y1]], np.int32)
            fill(lambda m, pts=pts: cv2.fillPoly(m, [pts], 255, cv2.LINE_AA), (20, 100, 20) if rng.random() < 0.7 else colour)
        fill(lambda m: cv2.rectangle(m, (cx - max(1, w // 12), int(h * 0.85)), (cx + max(1, w // 12), h - 1), 255, -1), (30, 60, 100))
    elif kind == "arch":
        t = max(2, int(w * rng.uniform(0.12, 0.25)))
        fill(lambda m: cv2.ellipse(m, (cx, h - 1), (max(1, w // 2 - t // 2), max(1, h - t)), 0, 180, 360, 255, t), colour)
    else:  # blob: a few overlapping ellipses in two colours
        for _ in range(int(rng.integers(2, 5))):
            col = colour if rng.random() < 0.5 else second
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ax = (max(1, int(w * rng.uniform(0.15, 0.45))), max(1, int(h * rng.uniform(0.15, 0.45))))
            fill(lambda m, c=c, ax=ax: cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA), col)
    return bgr, a.astype(np.float32) / 255.0


def _side_code(rng: np.random.Generator, font: str, bold: int, height: int, squeeze: float) -> np.ndarray:
    """Two or three small characters stacked beside the registration (a county or type code).

    US plates print them (Idaho's 6C, Mississippi's MC, Oregon's CU, Wyoming's county
    number) but they are not part of the registration: the US benchmark crops label
    "6C 8862" as 8862, so the reader must learn to leave them out.
    """
    n = 2 if rng.random() < 0.75 else 3
    chars = [CHARSET[rng.integers(36)] if rng.random() < 0.5 else LETTERS[rng.integers(26)] for _ in range(n)]
    small_h = int(height * (rng.uniform(0.3, 0.45) if n == 2 else rng.uniform(0.24, 0.31)))
    glyphs = [cv2.resize(g, (max(2, int(g.shape[1] * small_h / 96 * squeeze)), max(2, small_h)))
              for g in (_glyph(font, ch, bold) for ch in chars)]
    col = np.zeros((height, max(g.shape[1] for g in glyphs) + 1), np.uint8)
    step = (height - small_h) / max(1, n - 1)
    for k, g in enumerate(glyphs):
        y0 = int(round(k * step))
        col[y0: y0 + g.shape[0], : g.shape[1]] = np.maximum(col[y0: y0 + g.shape[0], : g.shape[1]], g[: height - y0])
    return col


def _pitch(font: str, bold: int, text: str, height: int, squeeze: float) -> int:
    """A fixed-pitch cell's width in px: the font's 0 or the text's median glyph, whichever is wider.

    US dies stand each character in a cell of one width, so a 1 or an I keeps a full cell of plate around it
    (us-crops-dev: BUBBIE2, DELIGRL, HW1155), where a desktop font sets glyph against glyph. Off unless asked
    for (`pitch_share`): two runs trained with 0.7 read fewer real plates (1 read as I; OCR card, session 33)."""
    def w(ch: str) -> int:
        return max(2, int(_glyph(font, ch, bold).shape[1] * height / 96 * squeeze))
    return max(w("0"), int(np.median([w(ch) for ch in text]))) if text else w("0")


def _text_mask(rng: np.random.Generator, text: str, height: int, max_width: int,
               ink=(0, 0, 0), stack_share: float = STACK_SHARE,
               font_check: bool = True, die_font_share: float = 0.0,
               pitch_share: float = 0.0, die_i1_share: float = 0.0,
               die_i_share: float = 0.0) -> tuple[np.ndarray, list[_Picture]]:
    """Render `text` as plate characters into a mask of the given height.

    Inserts separators (space, dash, dot, ring, or a picture in its own colours)
    and side codes (small stacked characters beside the registration) that are
    not part of the label, and sometimes stacks two small characters inside
    the registration (read in order). Returns the mask and the pictures to draw
    over it.
    """
    font, bold = _font_choice(rng, text, font_check, die_font_share)
    squeeze = rng.uniform(*SQUEEZE)
    if font in DIE_FONT_FILES:  # to a die's proportions, whatever the series' own width
        squeeze = rng.uniform(*DIE_ASPECT) / (_glyph(font, "0", bold).shape[1] / 96)
    gap = int(height * rng.uniform(0.03, 0.16))
    pieces: list[np.ndarray] = []
    pictures: list[_Picture] = []
    stack_at = -1
    if len(text) >= 5 and rng.random() < stack_share:
        stack_at = int(rng.integers(1, len(text) - 2))
    sep_at = -1
    if len(text) >= 4 and rng.random() < 0.6:
        sep_at = int(rng.integers(2, len(text) - 1))
    sep_kind = rng.choice(["space", "dash", "dot", "ring", "picture", "picture"])
    side = rng.choice(["left", "right"]) if rng.random() < 0.12 else ""
    open_four = rng.random() < 0.25
    pitch = _pitch(font, bold, text, height, squeeze) if _toss(rng, pitch_share) else 0
    die_i1 = any(ch in "1I" for ch in text) and _toss(rng, die_i1_share)
    die_i = die_i1 or ("I" in text and _toss(rng, die_i_share))

    def width() -> int:
        return sum(p.shape[1] for p in pieces)

    if side == "left":
        pieces.append(_side_code(rng, font, bold, height, squeeze))
        pieces.append(np.zeros((height, int(gap + height * rng.uniform(0.08, 0.3))), np.uint8))
    i = 0
    while i < len(text):
        if i == sep_at:
            w = int(height * (rng.uniform(0.5, 1.1) if sep_kind == "picture" else rng.uniform(0.15, 0.6)))
            sep = np.zeros((height, w), np.uint8)
            if sep_kind == "dash":
                cv2.rectangle(sep, (w // 5, int(height * 0.46)), (w - w // 5, int(height * 0.56)), 255, -1)
            elif sep_kind == "dot":
                cv2.circle(sep, (w // 2, height // 2), max(2, int(height * 0.06)), 255, -1)
            elif sep_kind == "ring":
                r = max(3, min(w // 2 - 1, int(height * 0.22)))
                cv2.circle(sep, (w // 2, height // 2), r, int(rng.integers(120, 256)), int(rng.choice([-1, 2])))
            elif sep_kind == "picture":
                ph = min(height, int(height * rng.uniform(0.6, 1.1)))
                bgr, alpha = _picture(rng, ph, w, ink)
                top = (height - bgr.shape[0]) // 2
                rows = (top, height - bgr.shape[0] - top)
                full_bgr = np.pad(bgr, (rows, (0, 0), (0, 0)))
                full_a = np.pad(alpha, (rows, (0, 0)))
                pictures.append(_Picture(width(), full_bgr, full_a))
            pieces.append(sep)
            pieces.append(np.zeros((height, gap), np.uint8))
        if i == stack_at:
            small_h = int(height * 0.46)
            a = _glyph(font, text[i], bold)
            b = _glyph(font, text[i + 1], bold)
            w = int(max(a.shape[1], b.shape[1]) * small_h / 96 * squeeze) + 1
            col = np.zeros((height, w), np.uint8)
            for k, g in enumerate((a, b)):
                gg = cv2.resize(g, (max(2, int(g.shape[1] * small_h / 96 * squeeze)), small_h))
                y0 = 0 if k == 0 else height - small_h
                col[y0: y0 + small_h, : gg.shape[1]] = np.maximum(col[y0: y0 + small_h, : gg.shape[1]], gg)
            pieces.append(col)
            i += 2
        else:
            if text[i] == "4" and open_four:
                g = _open_four(bold)
            elif die_i1 and text[i] == "1":
                g = _die_one(font, bold)
            elif die_i and text[i] == "I":
                g = _die_i(font, bold)
            else:
                g = _glyph(font, text[i], bold)
            g = cv2.resize(g, (max(2, int(g.shape[1] * height / 96 * squeeze)), height))
            if g.shape[1] < pitch:  # centred in its cell
                left = (pitch - g.shape[1]) // 2
                g = np.pad(g, ((0, 0), (left, pitch - g.shape[1] - left)))
            pieces.append(g)
            i += 1
        pieces.append(np.zeros((height, gap), np.uint8))
    pieces.pop()
    if side == "right":
        pieces.append(np.zeros((height, int(gap + height * rng.uniform(0.08, 0.3))), np.uint8))
        pieces.append(_side_code(rng, font, bold, height, squeeze))
    mask = np.hstack(pieces) if len(pieces) > 1 else pieces[0]
    if mask.shape[1] > max_width:
        s = max_width / mask.shape[1]
        mask = cv2.resize(mask, (max_width, height), interpolation=cv2.INTER_AREA)
        pictures = [_Picture(int(p.x * s), cv2.resize(p.bgr, (max(1, int(p.bgr.shape[1] * s)), height)),
                             cv2.resize(p.alpha, (max(1, int(p.alpha.shape[1] * s)), height))) for p in pictures]
    return mask, pictures


@lru_cache(maxsize=1)
def _designs() -> list[_Design]:
    """DMV plate designs with their sample text painted out, used as backgrounds.

    Inpainting 600 designs takes a while, so the result is cached (never committed:
    it is derived from the datasets) under models/cache/.
    """
    root = DATASETS / "us-plate-designs"
    # v2: the wider inpainting; a new name, so that caches made by the old settings are not reused
    cache = Path(__file__).resolve().parents[1] / "cache" / "designs_inpainted_v2.npy"
    if cache.exists():
        return [_Design(im) for im in np.load(cache)]
    out: list[_Design] = []
    if not (root / "designs.csv").exists():
        return out
    with open(root / "designs.csv") as fh:
        files = [r["file"] for r in csv.DictReader(fh)]
    for f in files:
        img = cv2.imread(str(root / f))
        if img is None:
            continue
        img = cv2.resize(img, (PLATE_W, PLATE_H), interpolation=cv2.INTER_AREA)
        out.append(_Design(_inpaint_text(img)))
    if out:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")  # generators started together each write their own
        np.save(tmp, np.stack([d.image for d in out]))
        os.replace(tmp, cache)
    return out


def _inpaint_text(img: np.ndarray) -> np.ndarray:
    """Remove the sample characters from the middle band of a design.

    A wide median (51 px) stands for the background, anything 25 grey levels off
    it is masked, grown by 9 px and inpainted with a 9 px radius: narrower
    settings left dark smudges of the sample text (black blobs over the
    characters drawn later, on one plate in five)."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    y0, y1, x0, x1 = int(PLATE_H * 0.2), int(PLATE_H * 0.85), int(PLATE_W * 0.03), int(PLATE_W * 0.97)
    band = grey[y0:y1, x0:x1]
    bg = cv2.medianBlur(band, 51)
    diff = cv2.absdiff(band, bg)
    m = np.zeros_like(grey)
    m[y0:y1, x0:x1] = (diff > 25).astype(np.uint8) * 255
    m = cv2.dilate(m, np.ones((9, 9), np.uint8))
    return cv2.inpaint(img, m, 9, cv2.INPAINT_TELEA)


def _plain_plate(rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A plain plate: background colour, header state name, footer slogan, border."""
    bgs = [(245, 245, 245), (235, 240, 250), (60, 200, 240), (250, 230, 200), (200, 230, 250), (225, 225, 225),
           (40, 40, 40), (120, 60, 20), (30, 90, 30), (40, 40, 160)]
    bg = np.array(bgs[rng.integers(len(bgs))], float) + rng.normal(0, 12, 3)
    img = np.empty((PLATE_H, PLATE_W, 3), np.float32)
    grad = np.linspace(rng.uniform(0.85, 1.0), rng.uniform(0.9, 1.1), PLATE_H)[:, None, None]
    img[:] = bg * grad
    img = np.clip(img, 0, 255).astype(np.uint8)
    light = bg.mean() > 110
    ink = (rng.integers(0, 70), rng.integers(0, 60), rng.integers(0, 90)) if light else (240, 240, 240)
    if rng.random() < 0.2 and light:
        ink = (20, 20, 150) if rng.random() < 0.5 else (120, 40, 10)
    if rng.random() < 0.8:
        c = tuple(int(v) for v in rng.integers(0, 200, 3))
        cv2.rectangle(img, (3, 3), (PLATE_W - 4, PLATE_H - 4), c, int(rng.integers(1, 5)))
    return img, tuple(int(v) for v in ink)


def _draw_small_text(rng, img, text, y_center, height, color):
    mask = _text_mask_plain(rng, text, height)
    w = min(mask.shape[1], PLATE_W - 20)
    mask = cv2.resize(mask, (w, height))
    x0 = int((PLATE_W - w) / 2 + rng.integers(-20, 21))
    x0 = int(np.clip(x0, 0, PLATE_W - w))
    y0 = int(np.clip(y_center - height // 2, 0, PLATE_H - height))
    _blend(img, mask, x0, y0, color)


@lru_cache(maxsize=64)
def _pil_font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def _text_mask_plain(rng, text, height) -> np.ndarray:
    from PIL import Image, ImageDraw

    fonts = _fonts()
    if not fonts:
        m = np.zeros((height, max(8, len(text) * height // 2)), np.uint8)
        cv2.putText(m, text, (0, int(height * 0.8)), cv2.FONT_HERSHEY_SIMPLEX, height / 30, 255, 1)
        return m
    f = _pil_font(fonts[rng.integers(len(fonts))], 40)
    l, t, r, b = f.getbbox(text)
    im = Image.new("L", (r - l + 4, b - t + 4), 0)
    ImageDraw.Draw(im).text((2 - l, 2 - t), text, font=f, fill=255)
    a = np.asarray(im)
    return cv2.resize(a, (max(2, int(a.shape[1] * height / a.shape[0])), height))


def _illegibility(img: np.ndarray, mask: np.ndarray, x0: int, y0: int, ink) -> float:
    """The worst share, over character-wide stretches of the text, of stroke pixels whose
    background is within 60 grey levels of the ink.

    DMV designs carry dark pictures (Oklahoma's shield) and dark bands; ink painted over
    them vanishes, and a plate whose label cannot be seen teaches the OCR to invent
    characters and makes simulated vehicles that no reader could read. Real plates are
    designed to be legible, so the generator keeps them so."""
    h = min(mask.shape[0], img.shape[0] - y0)
    w = min(mask.shape[1], img.shape[1] - x0)
    if h <= 0 or w <= 0 or x0 < 0 or y0 < 0:
        return 0.0
    lum = cv2.cvtColor(img[y0: y0 + h, x0: x0 + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    ink_lum = 0.114 * ink[0] + 0.587 * ink[1] + 0.299 * ink[2]
    under = mask[:h, :w] > 128
    close = under & (np.abs(lum - ink_lum) < 60)
    step = max(4, h // 2)
    worst = 0.0
    for c in range(0, w, step):
        n = int(under[:, c: c + step].sum())
        if n > 20:
            worst = max(worst, float(close[:, c: c + step].sum()) / n)
    return worst


LEGIBLE = 0.3  # illegibility above this: the ink is changed for the most legible of INKS
INKS = [(20, 20, 20), (245, 245, 245), (30, 30, 140), (90, 30, 10), (20, 80, 20)]


def _legible_ink(img: np.ndarray, mask: np.ndarray, x0: int, y0: int, ink):
    """`ink`, or the most legible of INKS where the design beneath would swallow it."""
    if _illegibility(img, mask, x0, y0, ink) <= LEGIBLE:
        return ink
    return min(INKS, key=lambda c: _illegibility(img, mask, x0, y0, c))


def _outline_if_illegible(img: np.ndarray, mask: np.ndarray, x0: int, y0: int, ink) -> bool:
    """Where no ink of INKS reads over the design (a white 1 on Kentucky's white blob, the rest of the
    serial on its red: 8 % of designed plates), the characters get a rim of the contrasting grey, as
    plates printed over busy art outline theirs. Draws nothing random, so every other plate a seed
    makes stays as it was. Returns whether it outlined."""
    if _illegibility(img, mask, x0, y0, ink) <= LEGIBLE:
        return False
    k = max(3, int(mask.shape[0] * 0.08)) | 1
    rim = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    dark = 0.114 * ink[0] + 0.587 * ink[1] + 0.299 * ink[2] > 128
    _blend(img, rim, x0, y0, (20, 20, 20) if dark else (245, 245, 245))
    return True


def _blend(img: np.ndarray, mask: np.ndarray, x0: int, y0: int, color) -> None:
    """Paint `color` through a grey mask (ink, rims, small text)."""
    fill = np.broadcast_to(np.asarray(color, np.float32), mask.shape + (3,))
    _paste(img, fill, mask.astype(np.float32) / 255.0, x0, y0)


def _paste(img: np.ndarray, bgr: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend a coloured layer onto the plate, clipped to its edges."""
    h = min(bgr.shape[0], img.shape[0] - y0)
    w = min(bgr.shape[1], img.shape[1] - x0)
    if h <= 0 or w <= 0 or x0 < 0 or y0 < 0:
        return
    a = alpha[:h, :w, None]
    roi = img[y0: y0 + h, x0: x0 + w].astype(np.float32)
    img[y0: y0 + h, x0: x0 + w] = (roi * (1 - a) + bgr[:h, :w].astype(np.float32) * a).astype(np.uint8)


def _clutter(rng: np.random.Generator, img: np.ndarray, plain: bool) -> None:
    """State name, slogan, stickers, bolts: things on a plate that are not its text."""
    if plain:
        color = tuple(int(v) for v in rng.integers(0, 180, 3))
        if rng.random() < 0.9:
            _draw_small_text(rng, img, STATES[rng.integers(len(STATES))], int(PLATE_H * 0.12), int(PLATE_H * rng.uniform(0.1, 0.17)), color)
        if rng.random() < 0.75:
            _draw_small_text(rng, img, SLOGANS[rng.integers(len(SLOGANS))], int(PLATE_H * 0.9), int(PLATE_H * rng.uniform(0.07, 0.12)), color)
    for _ in range(int(rng.integers(0, 3))):  # registration stickers in the corners
        w, h = int(rng.integers(28, 50)), int(rng.integers(20, 34))
        x = int(rng.choice([rng.integers(4, 30), rng.integers(PLATE_W - 80, PLATE_W - w - 2)]))
        y = int(rng.integers(4, 24))
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(img, (x, y), (x + w, y + h), c, -1)
        cv2.putText(img, str(int(rng.integers(1, 13))).zfill(2), (x + 4, y + h - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    h / 40, (0, 0, 0) if sum(c) > 300 else (255, 255, 255), 1, cv2.LINE_AA)
    if rng.random() < 0.6:  # bolts
        r = int(rng.integers(3, 7))
        c = int(rng.integers(40, 230))
        for x in (int(PLATE_W * 0.22), int(PLATE_W * 0.78)):
            for y in ((int(PLATE_H * 0.1),) if rng.random() < 0.6 else (int(PLATE_H * 0.1), int(PLATE_H * 0.9))):
                cv2.circle(img, (x, y), r, (c, c, c), -1, cv2.LINE_AA)
                cv2.circle(img, (x, y), r, (c // 3,) * 3, 1, cv2.LINE_AA)


def _frame_bars(img: np.ndarray, top: int, bottom: int, side: int, colour) -> np.ndarray:
    """A copy of the plate with a frame's bars painted on: `top` rows over its header, `bottom` rows over
    its footer, `side` + 1 columns down each side."""
    out = img.copy()
    if top > 0:
        cv2.rectangle(out, (0, 0), (PLATE_W - 1, top - 1), colour, -1)
    if bottom > 0:
        cv2.rectangle(out, (0, PLATE_H - bottom), (PLATE_W - 1, PLATE_H - 1), colour, -1)
    cv2.rectangle(out, (0, 0), (side, PLATE_H - 1), colour, -1)
    cv2.rectangle(out, (PLATE_W - side - 1, 0), (PLATE_W - 1, PLATE_H - 1), colour, -1)
    return out


def _frame(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A dealer frame around the plate, often covering part of header and footer."""
    top, bot = int(rng.integers(4, 22)), int(rng.integers(8, 30))
    side = int(rng.integers(3, FRAME_MAX_SIDE))
    c = tuple(int(v) for v in rng.integers(0, 80, 3)) if rng.random() < 0.7 else (200, 200, 200)
    out = _frame_bars(img, top + 1, bot, side, c)
    if bot > 14 and rng.random() < 0.7:
        txt = rng.choice(["AUTO SALES", "TOYOTA OF CITY", "FORD", "HONDA CITY", "DEALER 555-0100", "GO TEAM"])
        cv2.putText(out, str(txt), (int(rng.integers(20, 120)), PLATE_H - bot // 4), cv2.FONT_HERSHEY_SIMPLEX,
                    bot / 40, (230, 230, 230) if sum(c) < 300 else (20, 20, 20), 1, cv2.LINE_AA)
    return out


DEALER_TEXTS = ["DUBLIN TOYOTA", "Doin' It Right!!", "HONDA OF SANTA MONICA", "AutoNation", "CARMAX",
                "I'd rather be fishing", "UCLA ALUMNI", "GO BEARS", "SUNSET FORD", "www.cityauto.com",
                "PROUD GRANDPARENT", "MISSION VALLEY NISSAN", "Lithia Chevrolet", "ARMY", "Semper Fi",
                "KIA OF PALO ALTO", "Bay Area BMW", "Jesus Saves", "My other car is a boat", "VOLKSWAGEN",
                "SUBARU", "JEEP", "Hendrick Lexus", "FRIENDS DON'T LET FRIENDS", "(800) 555-0199",
                "NAVY", "MOM'S TAXI", "Sacramento Kings", "USC TROJANS", "CHEVROLET", "HYUNDAI"]


def _dealer_frame(rng: np.random.Generator, img: np.ndarray, text_top: int, text_bottom: int) -> np.ndarray:
    """A dealer's or fan's frame: bars over the plate's header and footer that print a name in bold
    letters filling half or more of the bar, white on black or black on chrome, up to a few pixels from
    the registration (real frames reach that close: a scenes-ca Toyota frame read 7A33474 as ZM3347).
    The sides stay within FRAME_MAX_SIDE, which the text keeps clear of. Nothing printed is in the label."""
    gap = int(rng.integers(2, 7))

    def bar(room: int, least: int) -> int:  # a bar's height: at least `least` px where the room allows
        return int(rng.integers(least, room + 1)) if room > least else max(0, room)

    top, bot = bar(text_top - gap, 6), bar(PLATE_H - text_bottom - gap, 10)
    side = int(rng.integers(3, FRAME_MAX_SIDE))
    dark = rng.random() < 0.7
    c = tuple(int(v) for v in (rng.integers(0, 60, 3) if dark else rng.integers(170, 235, 3)))
    out = _frame_bars(img, top, bot, side, c)
    ink = (tuple(int(v) for v in rng.integers(200, 256, 3)) if rng.random() < 0.8 else (40, 170, 220)) if dark \
        else tuple(int(v) for v in rng.integers(0, 50, 3))
    for y, h in ((0, top), (PLATE_H - bot, bot)):
        if h < 8 or rng.random() < 0.2:
            continue
        th = max(6, int(h * rng.uniform(0.55, 0.85)))
        words = str(DEALER_TEXTS[rng.integers(len(DEALER_TEXTS))])
        m = _text_mask_plain(rng, words, th)
        w = min(m.shape[1], PLATE_W - 2 * side - 8)
        m = cv2.resize(m, (w, th))
        if rng.random() < 0.6:  # bold: printed frames letter heavily
            m = cv2.dilate(m, np.ones((2, 2), np.uint8))
        x0 = int(np.clip((PLATE_W - w) / 2 + rng.integers(-15, 16), side + 2, PLATE_W - side - 2 - w))
        _blend(out, m, x0, y + (h - th) // 2, ink)
    return out


def _plate_face(rng: np.random.Generator, text: str, stack_share: float = STACK_SHARE,
                font_check: bool = True, die_font_share: float = 0.0, dealer_share: float = 0.0,
                pitch_share: float = 0.0, die_i1_share: float = 0.0, die_i_share: float = 0.0) -> np.ndarray:
    """The flat, frontal plate (PLATE_H x PLATE_W BGR) carrying `text`; `dealer_share` of plates in a
    dealer's frame that prints its name above and below the text (`_dealer_frame`)."""
    designs = _designs()
    plain = not designs or rng.random() < 0.4
    if plain:
        img, ink = _plain_plate(rng)
    else:
        img = designs[rng.integers(len(designs))].image.copy()
        mid = img[int(PLATE_H * 0.3): int(PLATE_H * 0.75)]
        lum = float(cv2.cvtColor(mid, cv2.COLOR_BGR2GRAY).mean())
        if lum > 110:
            choices = [(20, 20, 20), (90, 30, 10), (30, 30, 140), (60, 60, 60), (20, 80, 20)]
        else:
            choices = [(245, 245, 245), (200, 240, 250), (20, 20, 20)]
        ink = choices[rng.integers(len(choices))]
    _clutter(rng, img, plain)
    th = int(PLATE_H * rng.uniform(0.38, 0.6))
    max_w = min(int(PLATE_W * rng.uniform(0.72, 0.95)), PLATE_W - 2 * TEXT_MARGIN)
    side = rng.choice(["left", "right"]) if rng.random() < 0.2 else ""
    if side:  # a picture beside the text (Arizona's cactus, Maine's chickadee, a county seal)
        ph = int(PLATE_H * rng.uniform(0.4, 0.85))
        pw = int(ph * rng.uniform(0.4, 0.9))
        bgr, alpha = _picture(rng, ph, pw, ink)
        px = int(rng.integers(2, 10)) if side == "left" else PLATE_W - pw - int(rng.integers(2, 10))
        # the text keeps clear of the picture: a heart over the first character made a label no one can read
        max_w = min(max_w, (PLATE_W - px - pw if side == "left" else px) - TEXT_MARGIN - PICTURE_GAP)
        py = int(np.clip(PLATE_H * rng.uniform(0.4, 0.6) - ph / 2, 0, PLATE_H - ph))
        _paste(img, bgr, alpha, px, py)
    mask, pictures = _text_mask(rng, text, th, max_w, ink, stack_share, font_check, die_font_share, pitch_share,
                                die_i1_share, die_i_share)
    x0 = int((PLATE_W - mask.shape[1]) / 2 + rng.normal(0, 8))
    if side == "left":
        x0 = PLATE_W - mask.shape[1] - int(rng.integers(4, 14))
    elif side == "right":
        x0 = int(rng.integers(4, 14))
    # clear of the widest dealer frame (_frame) by a gap: a frame over or against the first character makes a
    # label no one can read
    x0 = int(np.clip(x0, TEXT_MARGIN, max(TEXT_MARGIN, PLATE_W - mask.shape[1] - TEXT_MARGIN)))
    y0 = int(PLATE_H * rng.uniform(0.45, 0.58) - th / 2)
    ink = _legible_ink(img, mask, x0, y0, ink)
    _outline_if_illegible(img, mask, x0, y0, ink)
    if rng.random() < 0.5:  # embossed: a light rim below-right, a dark rim above-left
        _blend(img, (mask * 0.5).astype(np.uint8), x0 + 2, y0 + 2, (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0))
    _blend(img, mask, x0, y0, ink)
    for p in pictures:
        _paste(img, p.bgr, p.alpha, x0 + p.x, y0)
    if dealer_share and rng.random() < dealer_share:
        img = _dealer_frame(rng, img, y0, y0 + mask.shape[0])
    elif rng.random() < 0.25:
        img = _frame(rng, img)
    return img


def _degrade(rng: np.random.Generator, img: np.ndarray, night: bool) -> np.ndarray:
    """Dirt, shadow, glare, blur, noise, low light, JPEG loss, near-infrared look."""
    h, w = img.shape[:2]
    f = img.astype(np.float32)
    if rng.random() < 0.3:  # dirt
        n = rng.random((h // 8 + 1, w // 8 + 1)).astype(np.float32)
        n = cv2.resize(n, (w, h))[..., None]
        f *= 1 - rng.uniform(0.1, 0.45) * (n > rng.uniform(0.5, 0.8))
    if rng.random() < 0.3:  # shadow across part of the plate
        pts = np.array([[rng.integers(0, w), 0], [rng.integers(0, w), h], [w, h], [w, 0]], np.int32)
        if rng.random() < 0.5:
            pts[:, 0] = w - pts[:, 0]
        m = np.zeros((h, w), np.float32)
        cv2.fillPoly(m, [pts], 1.0)
        m = cv2.GaussianBlur(m, (0, 0), 3)[..., None]
        f *= 1 - rng.uniform(0.3, 0.7) * m
    if rng.random() < 0.2:  # glare
        m = np.zeros((h, w), np.float32)
        cv2.ellipse(m, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                    (int(rng.integers(10, w // 2)), int(rng.integers(5, h // 2))), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        m = cv2.GaussianBlur(m, (0, 0), 8)[..., None]
        f = f + rng.uniform(80, 220) * m
    if night:
        g = f.max(axis=2) * 0.6 + f.mean(axis=2) * 0.4  # most dyes glow in NIR; black ink stays dark
        g = np.where(g > 150, g * rng.uniform(1.0, 1.3), g * rng.uniform(0.5, 1.0))
        f = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.4 or night:  # exposure / gain
        f = f * rng.uniform(0.25, 1.3) + rng.uniform(-30, 30)
    f = np.clip(f, 0, 255)
    if rng.random() < 0.3:
        gamma = rng.uniform(0.6, 1.6)
        f = 255 * (f / 255) ** gamma
    out = f.astype(np.uint8)
    if rng.random() < 0.35:  # motion blur, mostly horizontal
        k = int(rng.integers(3, 12))
        ker = np.zeros((k, k), np.float32)
        ker[k // 2, :] = 1
        M = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(-30, 30)), 1)
        ker = cv2.warpAffine(ker, M, (k, k))
        out = cv2.filter2D(out, -1, ker / max(ker.sum(), 1e-6))
    if rng.random() < 0.35:  # defocus
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 2.5))
    return out


def _warp(rng: np.random.Generator, face: np.ndarray) -> np.ndarray:
    """Perspective and a crop with margins, as a detector would hand the plate to OCR."""
    h, w = face.shape[:2]
    pad = int(w * 0.25)
    bgc = rng.integers(0, 256, 3)
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[:] = bgc
    sh = (canvas.shape[0] // 4 + 1, canvas.shape[1] // 4 + 1)
    noise = cv2.resize((rng.standard_normal(sh, np.float32) * rng.uniform(2, 25)), (canvas.shape[1], canvas.shape[0]))
    canvas = cv2.add(canvas.astype(np.float32), noise[..., None].repeat(3, 2), dtype=cv2.CV_8U)
    canvas[pad: pad + h, pad: pad + w] = face
    src = np.float32([[pad, pad], [pad + w, pad], [pad + w, pad + h], [pad, pad + h]])
    j = rng.uniform(-1, 1, (4, 2)) * np.array([w, h]) * rng.uniform(0.0, 0.09)
    if rng.random() < 0.5:  # horizontal viewing angle: one side shorter
        k = rng.uniform(-0.12, 0.12) * h
        j[1, 1] += k
        j[2, 1] -= k
    rot = rng.normal(0, 3)
    dst = src + j
    c = dst.mean(0)
    R = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), rot, 1)[:, :2]
    dst = (dst - c) @ R.T + c
    M = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(canvas, M, (canvas.shape[1], canvas.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = dst.min(0)
    x1, y1 = dst.max(0)
    mx = rng.uniform(-0.03, 0.1) * w
    my = rng.uniform(-0.04, 0.15) * h
    x0, x1 = int(max(0, x0 - mx * rng.uniform(0.5, 1.5))), int(min(canvas.shape[1], x1 + mx * rng.uniform(0.5, 1.5)))
    y0, y1 = int(max(0, y0 - my * rng.uniform(0.5, 1.5))), int(min(canvas.shape[0], y1 + my * rng.uniform(0.5, 1.5)))
    return warped[y0:y1, x0:x1]


def render_plate(rng: np.random.Generator, text: str | None = None, night: bool = False,
                 degrade: bool = True, stack_share: float = STACK_SHARE,
                 font_check: bool = True, die_font_share: float = 0.0,
                 dealer_share: float = 0.0, pitch_share: float = 0.0,
                 die_i1_share: float = 0.0, die_i_share: float = 0.0) -> tuple[np.ndarray, str]:
    """Render one plate crop (BGR uint8, about 2:1) and return it with its label.

    `stack_share` is the share of plates (of 5+ characters) with an interior stacked pair:
    rare on real plates, so training shards can ask for more of them to be learnt.
    `font_check=False` lets any font draw the text, also one whose O, Q, I or B looks like
    its digit (`ambiguous_letters`): a reader trained on such plates stays unsure of a glyph
    that real plates leave ambiguous, so the US format prior can decide it.
    `die_font_share` draws that share of plates in a plate-die lookalike (DIE_FONT_FILES).
    `dealer_share` frames that share of plates in a dealer's frame printed above and below the text.
    `pitch_share` sets that share of plates at a fixed pitch, each glyph centred in a cell (`_pitch`).
    `die_i1_share` draws, on that share of plates holding a 1 or an I, 1 as a bare bar and I with slab serifs,
    as US dies draw them (`_die_one`, `_die_i`), where the fonts mostly do the opposite.
    `die_i_share` draws the I alone with slab serifs on that share of plates holding one, the 1 left to the
    font: at 1 it tosses no coin, so a seed draws the plates it drew before with only their Is redrawn (the
    simulated road's dies, `[camera.simulated] die_i`).
    `degrade=False` returns the clean, flat plate face (for pasting into scenes,
    where the scene compositor applies its own perspective and camera effects).
    """
    if text is None:
        text = random_text(rng)
    text = "".join(ch for ch in text.upper() if ch in CHARSET)
    face = _plate_face(rng, text, stack_share, font_check, die_font_share, dealer_share, pitch_share,
                       die_i1_share, die_i_share)
    if not degrade:
        return face, text
    img = _warp(rng, face)
    img = _degrade(rng, img, night)
    if rng.random() < 0.5:
        q = int(rng.integers(20, 90))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if rng.random() < 0.3:  # low resolution: plate seen from afar
        s = rng.uniform(0.2, 0.5)
        small = cv2.resize(img, (max(8, int(img.shape[1] * s)), max(4, int(img.shape[0] * s))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    return img, text
