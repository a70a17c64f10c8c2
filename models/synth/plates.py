"""Synthetic US-style licence plates with their text, for OCR and detector training
and for the simulated road.

Real labelled US plates are scarce (a few hundred), so most OCR training images
come from here: plate-like fonts (Debian font packages plus OpenCV's stroke
fonts, which lack the serifs and feet of desktop fonts, like real plate dies),
squeezed and spaced like plates, on backgrounds cut from DMV designs (their
sample text inpainted away) or plain coloured plates with state names, slogans,
stickers, bolts and dealer frames that must NOT be read; stacked small
characters that must be read in order; then perspective, blur, dirt, shadow,
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
           ("@@@@@@@", 1), ("@@@@@", 1)]


@dataclass
class _Design:
    image: np.ndarray  # BGR, PLATE_H x PLATE_W, sample text inpainted


def random_text(rng: np.random.Generator) -> str:
    """A plate text in a common US format (or a vanity text)."""
    fmts, weights = zip(*FORMATS)
    p = np.array(weights, float)
    fmt = fmts[rng.choice(len(fmts), p=p / p.sum())]
    out = []
    for c in fmt:
        if c == "@":
            out.append(LETTERS[rng.integers(26)])
        elif c == "#":
            out.append(DIGITS[rng.integers(10)])
        else:
            out.append(CHARSET[rng.integers(36)])
    return "".join(out)


@lru_cache(maxsize=None)
def _fonts() -> list[str]:
    return [f for f in FONT_FILES if os.path.exists(f)]


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


def _font_choice(rng: np.random.Generator) -> tuple[str, int]:
    fonts = _fonts()
    if rng.random() < 0.35 or not fonts:
        return f"hershey:{rng.integers(len(HERSHEY))}", int(rng.integers(0, 4))
    return fonts[rng.integers(len(fonts))], int(rng.choice([0, 0, 1, 2]))


def _text_mask(rng: np.random.Generator, text: str, height: int, max_width: int) -> np.ndarray:
    """Render `text` as plate characters into a mask of the given height.

    Inserts separators (space, dash, dot, small emblem) that are not part of
    the label, and sometimes stacks two small characters (read in order).
    """
    font, bold = _font_choice(rng)
    squeeze = rng.uniform(0.5, 1.05)
    gap = int(height * rng.uniform(0.03, 0.16))
    pieces: list[np.ndarray] = []
    stack_at = -1
    if len(text) >= 4 and rng.random() < 0.08:
        stack_at = int(rng.choice([0, len(text) - 2]))
    sep_at = -1
    if len(text) >= 4 and rng.random() < 0.55:
        sep_at = int(rng.integers(2, len(text) - 1))
    sep_kind = rng.choice(["space", "dash", "dot", "emblem"])
    open_four = rng.random() < 0.25
    i = 0
    while i < len(text):
        if i == sep_at:
            w = int(height * rng.uniform(0.15, 0.6))
            sep = np.zeros((height, w), np.uint8)
            if sep_kind == "dash":
                cv2.rectangle(sep, (w // 5, int(height * 0.46)), (w - w // 5, int(height * 0.56)), 255, -1)
            elif sep_kind == "dot":
                cv2.circle(sep, (w // 2, height // 2), max(2, int(height * 0.06)), 255, -1)
            elif sep_kind == "emblem":
                r = max(3, min(w // 2 - 1, int(height * 0.22)))
                cv2.circle(sep, (w // 2, height // 2), r, int(rng.integers(120, 256)), int(rng.choice([-1, 2])))
            pieces.append(sep)
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
            g = _open_four(bold) if text[i] == "4" and open_four else _glyph(font, text[i], bold)
            pieces.append(cv2.resize(g, (max(2, int(g.shape[1] * height / 96 * squeeze)), height)))
            i += 1
        pieces.append(np.zeros((height, gap), np.uint8))
    mask = np.hstack(pieces[:-1]) if len(pieces) > 1 else pieces[0]
    if mask.shape[1] > max_width:
        mask = cv2.resize(mask, (max_width, height), interpolation=cv2.INTER_AREA)
    return mask


@lru_cache(maxsize=1)
def _designs() -> list[_Design]:
    """DMV plate designs with their sample text painted out, used as backgrounds.

    Inpainting 600 designs takes a while, so the result is cached (never committed:
    it is derived from the datasets) under models/cache/.
    """
    root = DATASETS / "us-plate-designs"
    cache = Path(__file__).resolve().parents[1] / "cache" / "designs_inpainted.npy"
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
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, np.stack([d.image for d in out]))
        os.replace(tmp, cache)
    return out


def _inpaint_text(img: np.ndarray) -> np.ndarray:
    """Remove the sample characters from the middle band of a design."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    y0, y1, x0, x1 = int(PLATE_H * 0.2), int(PLATE_H * 0.85), int(PLATE_W * 0.03), int(PLATE_W * 0.97)
    band = grey[y0:y1, x0:x1]
    bg = cv2.medianBlur(band, 31)
    diff = cv2.absdiff(band, bg)
    m = np.zeros_like(grey)
    m[y0:y1, x0:x1] = (diff > 35).astype(np.uint8) * 255
    m = cv2.dilate(m, np.ones((5, 5), np.uint8))
    return cv2.inpaint(img, m, 5, cv2.INPAINT_TELEA)


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


def _blend(img: np.ndarray, mask: np.ndarray, x0: int, y0: int, color) -> None:
    h, w = mask.shape
    h = min(h, img.shape[0] - y0)
    w = min(w, img.shape[1] - x0)
    if h <= 0 or w <= 0:
        return
    a = (mask[:h, :w].astype(np.float32) / 255.0)[..., None]
    roi = img[y0: y0 + h, x0: x0 + w].astype(np.float32)
    img[y0: y0 + h, x0: x0 + w] = (roi * (1 - a) + np.array(color, np.float32) * a).astype(np.uint8)


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


def _frame(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A dealer frame around the plate, often covering part of header and footer."""
    top, bot = int(rng.integers(4, 22)), int(rng.integers(8, 30))
    side = int(rng.integers(3, 12))
    c = tuple(int(v) for v in rng.integers(0, 80, 3)) if rng.random() < 0.7 else (200, 200, 200)
    out = cv2.copyMakeBorder(img, 0, 0, 0, 0, cv2.BORDER_CONSTANT)
    cv2.rectangle(out, (0, 0), (PLATE_W - 1, top), c, -1)
    cv2.rectangle(out, (0, PLATE_H - bot), (PLATE_W - 1, PLATE_H - 1), c, -1)
    cv2.rectangle(out, (0, 0), (side, PLATE_H - 1), c, -1)
    cv2.rectangle(out, (PLATE_W - side - 1, 0), (PLATE_W - 1, PLATE_H - 1), c, -1)
    if bot > 14 and rng.random() < 0.7:
        txt = rng.choice(["AUTO SALES", "TOYOTA OF CITY", "FORD", "HONDA CITY", "DEALER 555-0100", "GO TEAM"])
        cv2.putText(out, str(txt), (int(rng.integers(20, 120)), PLATE_H - bot // 4), cv2.FONT_HERSHEY_SIMPLEX,
                    bot / 40, (230, 230, 230) if sum(c) < 300 else (20, 20, 20), 1, cv2.LINE_AA)
    return out


def _plate_face(rng: np.random.Generator, text: str) -> np.ndarray:
    """The flat, frontal plate (PLATE_H x PLATE_W BGR) carrying `text`."""
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
    mask = _text_mask(rng, text, th, int(PLATE_W * rng.uniform(0.72, 0.95)))
    x0 = int((PLATE_W - mask.shape[1]) / 2 + rng.normal(0, 8))
    x0 = int(np.clip(x0, 2, max(2, PLATE_W - mask.shape[1] - 2)))
    y0 = int(PLATE_H * rng.uniform(0.45, 0.58) - th / 2)
    if rng.random() < 0.5:  # embossed: a light rim below-right, a dark rim above-left
        _blend(img, (mask * 0.5).astype(np.uint8), x0 + 2, y0 + 2, (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0))
    _blend(img, mask, x0, y0, ink)
    if rng.random() < 0.25:
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
                 degrade: bool = True) -> tuple[np.ndarray, str]:
    """Render one plate crop (BGR uint8, about 2:1) and return it with its label.

    `degrade=False` returns the clean, flat plate face (for pasting into scenes,
    where the scene compositor applies its own perspective and camera effects).
    """
    if text is None:
        text = random_text(rng)
    text = "".join(ch for ch in text.upper() if ch in CHARSET)
    face = _plate_face(rng, text)
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
