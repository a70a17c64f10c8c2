"""Composite scenes for detector training: plates pasted into plate-free images, with boxes.

Real labelled scenes are few (a few hundred Romanian dash-cam frames and half of the
California set), so most detector samples are composites: real plate crops (crops-eu,
crops-br) and synthetic US plates pasted with perspective, scale, blur and lighting into
`negatives` and other scenes, plus unlabelled text-like clutter (signs, stickers, long
strings) so that the detector learns plates, not "any text". Night samples get the
near-infrared look of a pole camera: a dark scene with a glowing retro-reflective plate.

Everything works on grey uint8 images in *detector input pixels* (after the letterbox),
because the detector sees grey letterboxed frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

PlateMaker = Callable[[np.random.Generator, bool], np.ndarray]  # (rng, night) -> grey plate face

_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_WORDS = ["STOP", "PARKING", "EXIT", "ONE WAY", "SALE", "OPEN", "NO PARKING ANY TIME", "SPEED LIMIT",
          "TOW AWAY ZONE", "RESERVED", "ENTRANCE", "PHARMACY", "COFFEE", "HOTEL", "POLICE", "TAXI",
          "MAIN ST", "5TH AVE", "DELIVERY", "www.example.com", "CALL 555-0199", "AUTO PARTS",
          "BUS ONLY", "LOADING ZONE", "FIRE LANE", "BANK", "BAKERY", "MOTEL", "DINER", "RENT"]
_FONTS = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN]


def simple_plate(rng: np.random.Generator, night: bool = False) -> np.ndarray:
    """A plain plate face drawn with OpenCV (grey, about 2:1): the fallback plate source.

    Used when no crop set or US renderer is at hand (unit tests, a fresh checkout) and as
    extra variety: light or dark background, border, 5-8 characters, sometimes a top line.
    """
    h = 80
    w = int(h * rng.uniform(1.9, 4.5))
    light = rng.random() < 0.8
    bg = int(rng.integers(170, 255)) if light else int(rng.integers(10, 80))
    fg = int(rng.integers(0, 70)) if light else int(rng.integers(180, 255))
    img = np.full((h, w), bg, np.uint8)
    cv2.rectangle(img, (1, 1), (w - 2, h - 2), fg, int(rng.integers(1, 4)))
    text = "".join(rng.choice(list(_CHARS), int(rng.integers(5, 9))))
    font = int(rng.choice(_FONTS[:4]))
    thick = int(rng.integers(2, 5))
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, thick)
    scale = min((w * 0.88) / tw, (h * 0.55) / th)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    top_line = rng.random() < 0.5
    y = int(h * (0.8 if top_line else 0.5) + th / 2) if top_line else int((h + th) / 2)
    y = min(y, h - 4)
    cv2.putText(img, text, (int((w - tw) / 2), y), font, scale, fg, thick, cv2.LINE_AA)
    if top_line:
        cv2.putText(img, "".join(rng.choice(list("ABCDEFGHIKLMNORSTUVY"), int(rng.integers(4, 11)))),
                    (int(w * 0.3), int(h * 0.2)), cv2.FONT_HERSHEY_SIMPLEX, h / 110, fg, 1, cv2.LINE_AA)
    return img


def _quad(rng: np.random.Generator, cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """Corners (clockwise from top-left) of a plate seen at an angle: yaw, roll, jitter."""
    q = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float32)
    if rng.random() < 0.6:  # yaw: one side shorter
        k = rng.uniform(-0.15, 0.15)
        q[1, 1] *= 1 - k
        q[2, 1] *= 1 - k
        q[0, 1] *= 1 + k
        q[3, 1] *= 1 + k
    a = np.deg2rad(rng.normal(0, 4))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    q = q @ rot.T
    q += rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * np.array([w, h], np.float32)
    return q + np.array([cx, cy], np.float32)


def paste(canvas: np.ndarray, face: np.ndarray, quad: np.ndarray) -> None:
    """Warp a grey plate face onto the canvas at the quad, anti-aliased edges, in place."""
    fh, fw = face.shape[:2]
    src = np.float32([[0, 0], [fw, 0], [fw, fh], [0, fh]])
    x0, y0 = np.floor(quad.min(0)).astype(int) - 2
    x1, y1 = np.ceil(quad.max(0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    m = cv2.getPerspectiveTransform(src, (quad - np.float32([x0, y0])).astype(np.float32))
    size = (x1 - x0, y1 - y0)
    small = fw > 4 * size[0]
    if small:  # shrink first: warpPerspective does not low-pass filter
        f = max(size[0] * 2 / fw, 0.05)
        face = cv2.resize(face, (max(2, int(fw * f)), max(2, int(fh * f))), interpolation=cv2.INTER_AREA)
        m = m @ np.diag([fw / face.shape[1], fh / face.shape[0], 1.0])
    warped = cv2.warpPerspective(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpPerspective(np.ones(face.shape[:2], np.float32), m, size, flags=cv2.INTER_LINEAR)
    roi = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (roi * (1 - mask) + warped.astype(np.float32) * mask).clip(0, 255).astype(np.uint8)


def _car_context(rng: np.random.Generator, canvas: np.ndarray, cx: float, cy: float, w: float, h: float) -> None:
    """A bumper or boot lid around the plate, so plates are not always floating on clutter."""
    bw, bh = w * rng.uniform(1.4, 5.0), h * rng.uniform(1.6, 6.0)
    x0, y0 = int(cx - bw * rng.uniform(0.35, 0.65)), int(cy - bh * rng.uniform(0.3, 0.7))
    x1, y1 = int(x0 + bw), int(y0 + bh)
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1c <= x0c or y1c <= y0c:
        return
    level = rng.uniform(15, 230)
    grad = np.linspace(0, rng.uniform(-50, 50), y1c - y0c, dtype=np.float32)[:, None]
    patch = np.clip(level + grad + rng.normal(0, 3, (y1c - y0c, x1c - x0c)), 0, 255)
    if rng.random() < 0.4:  # a grille or light bar line above/below
        yy = int(rng.uniform(0, patch.shape[0]))
        patch[yy : yy + max(1, int(h * 0.2))] = rng.uniform(0, 255)
    canvas[y0c:y1c, x0c:x1c] = patch.astype(np.uint8)


def _recess(rng: np.random.Generator, canvas: np.ndarray, cx: float, cy: float, w: float, h: float) -> None:
    """A plate recess or chrome surround about as light as the plate, with bolt holes and a rim.

    Parking-lot photos show plates sitting in a pressed or chrome recess whose tone is close to the
    plate's: a detector that never saw one boxes the whole recess (scenes-ca cars3_014, a Lexus
    boot in scenes-us-speed). The labelled box stays the plate's, so the net learns the plate face.
    """
    H, W = canvas.shape
    rw, rh = w * rng.uniform(1.12, 2.0), h * rng.uniform(1.25, 2.6)
    x0 = int(cx - rw * rng.uniform(0.42, 0.58))
    y0 = int(cy - rh * rng.uniform(0.35, 0.6))
    x1, y1 = int(x0 + rw), int(y0 + rh)
    level = rng.uniform(130, 245)
    rim = int(np.clip(level - rng.uniform(60, 140), 0, 255))
    t = max(1, int(round(h * rng.uniform(0.05, 0.15))))
    if rng.random() < 0.5:  # a rounded, flared recess (boot lids) rather than a box
        pts = np.array([[x0, y0], [x1, y0], [int(x1 + rw * rng.uniform(0, 0.12)), y1],
                        [int(x0 - rw * rng.uniform(0, 0.12)), y1]], np.int32)
        cv2.fillConvexPoly(canvas, pts, int(level), cv2.LINE_AA)
        cv2.polylines(canvas, [pts], True, rim, t, cv2.LINE_AA)
    else:
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if xb <= xa or yb <= ya:
            return
        grad = np.linspace(rng.uniform(-25, 25), rng.uniform(-25, 25), yb - ya, dtype=np.float32)[:, None]
        canvas[ya:yb, xa:xb] = np.clip(level + grad + rng.normal(0, 2, (yb - ya, xb - xa)), 0, 255).astype(np.uint8)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), rim, t, cv2.LINE_AA)
        if rng.random() < 0.6:  # the lit lip under the top edge
            cv2.line(canvas, (x0 + t, y0 + 2 * t), (x1 - t, y0 + 2 * t), int(min(255, level + 30)), t, cv2.LINE_AA)
    for side in (-1, 1):  # bolt holes and lamp housings either side of the plate
        if rng.random() < 0.6:
            r = max(1, int(h * rng.uniform(0.06, 0.14)))
            c = (int(cx + side * (w / 2 + (rw - w) * rng.uniform(0.1, 0.4))), int(cy + rng.uniform(-0.3, 0.3) * h))
            cv2.circle(canvas, c, r, int(rim * rng.uniform(0.3, 1.0)), -1, cv2.LINE_AA)
    if rng.random() < 0.4:  # a chrome handle or light bar above the recess
        yy = int(y0 - h * rng.uniform(0.2, 0.9))
        th = max(1, int(h * rng.uniform(0.1, 0.25)))
        xl, xr = int(cx - rw * rng.uniform(0.5, 1.2)), int(cx + rw * rng.uniform(0.5, 1.2))
        cv2.line(canvas, (xl, yy + th), (xr, yy + th), rim, th, cv2.LINE_AA)
        cv2.line(canvas, (xl, yy), (xr, yy), int(rng.integers(190, 256)), th, cv2.LINE_AA)


_BADGES = ["TOYOTA", "CAMRY", "COROLLA", "HONDA", "ACCORD", "CIVIC", "NISSAN", "ALTIMA", "MAXIMA", "VOLVO",
           "JETTA", "PASSAT", "LEXUS", "AVALON", "CHEVROLET", "IMPALA", "FORD", "FOCUS", "MAZDA", "SUBARU",
           "HYBRID", "4X4", "4MATIC", "V6", "LE", "XLE", "DX", "EX", "LX", "GT", "SE", "325i", "G20", "190E",
           "Z28", "AWD", "TURBO", "SPORT", "LIMITED", "ES 300", "RAV4", "CR-V", "F-150", "TDI", "QUATTRO"]


def _badge(rng: np.random.Generator, canvas: np.ndarray, near: tuple[float, float, float, float] | None) -> None:
    """Chrome lettering or an emblem on a car body: the commonest false plate in parking-lot photos."""
    H, W = canvas.shape
    if near is not None:
        cx, cy, w, h = near
        th = h * rng.uniform(0.25, 0.8)
        x = cx + rng.uniform(-2.5, 2.5) * w
        y = cy - h * rng.uniform(1.2, 4.0) if rng.random() < 0.7 else cy + rng.uniform(-0.5, 0.5) * h
    else:
        th = float(np.exp(rng.uniform(np.log(4), np.log(30))))
        x, y = rng.uniform(0, W), rng.uniform(0, H)
    light = int(rng.integers(150, 256)) if rng.random() < 0.7 else int(rng.integers(0, 90))
    shadow = 255 - light
    if rng.random() < 0.3:  # an emblem: nested ellipses
        ax, ay = th * rng.uniform(0.8, 1.6), th * rng.uniform(0.5, 0.9)
        for k in range(int(rng.integers(1, 4))):
            cv2.ellipse(canvas, (int(x), int(y)), (max(1, int(ax * (1 - 0.3 * k))), max(1, int(ay * (1 - 0.25 * k)))),
                        0, 0, 360, light, max(1, int(th / 8)), cv2.LINE_AA)
        return
    text = str(rng.choice(_BADGES)) if rng.random() < 0.8 else "".join(rng.choice(list(_CHARS), int(rng.integers(2, 7))))
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
                           cv2.FONT_HERSHEY_COMPLEX])) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    scale = th / 22.0
    thick = max(1, int(round(th / rng.uniform(6, 12))))
    org = (int(x), int(y + th / 2))
    if rng.random() < 0.7:  # embossed: a shadow one pixel off
        cv2.putText(canvas, text, (org[0] + 1, org[1] + 1), font, scale, shadow, thick, cv2.LINE_AA)
    cv2.putText(canvas, text, org, font, scale, light, thick, cv2.LINE_AA)


def _lamp(rng: np.random.Generator, canvas: np.ndarray, near: tuple[float, float, float, float]) -> None:
    """Tail lights and reflectors beside a plate: bright rounded shapes with a rim."""
    cx, cy, w, h = near
    lw, lh = w * rng.uniform(0.4, 1.5), h * rng.uniform(0.6, 2.5)
    for side in (-1, 1):
        x = cx + side * w * rng.uniform(1.0, 3.0)
        c = (int(x), int(cy + rng.uniform(-2, 1) * h))
        v = int(rng.integers(120, 256))
        cv2.ellipse(canvas, c, (max(1, int(lw / 2)), max(1, int(lh / 2))), 0, 0, 360, v, -1, cv2.LINE_AA)
        cv2.ellipse(canvas, c, (max(1, int(lw / 2)), max(1, int(lh / 2))), 0, 0, 360, v // 3, max(1, int(h / 8)),
                    cv2.LINE_AA)
        if rng.random() < 0.5:
            break


def _clutter(rng: np.random.Generator, canvas: np.ndarray) -> None:
    """Unlabelled text-like things a detector must ignore: signs, long strings, stickers, stripes."""
    H, W = canvas.shape
    kind = rng.random()
    col = int(rng.integers(0, 256))
    if kind < 0.55:  # sign or writing: long text or several lines
        lines = int(rng.integers(1, 4))
        words = [str(rng.choice(_WORDS)) if rng.random() < 0.6 else
                 "".join(rng.choice(list(_CHARS + "  "), int(rng.integers(8, 16)))) for _ in range(lines)]
        if lines == 1 and len(words[0]) < 11:  # one short line on a panel would look like a plate
            words[0] = words[0] + " " + str(rng.choice(_WORDS))
        font = int(rng.choice(_FONTS))
        scale = rng.uniform(0.25, 1.4)
        thick = max(1, int(scale * rng.uniform(1, 3)))
        sizes = [cv2.getTextSize(t, font, scale, thick)[0] for t in words]
        tw = max(s[0] for s in sizes)
        lh = max(s[1] for s in sizes) * 1.6
        x = int(rng.uniform(-tw * 0.2, max(W - tw * 0.8, 1.0 - tw * 0.2)))
        y = int(rng.uniform(0, max(H - lh * lines, 1.0)))
        if rng.random() < 0.6:
            bgv = int(rng.integers(0, 256))
            cv2.rectangle(canvas, (x - 6, y - 4), (x + tw + 6, int(y + lh * lines + 4)), bgv, -1)
            col = 255 - bgv if abs(255 - 2 * bgv) > 60 else (0 if bgv > 127 else 255)
        for i, t in enumerate(words):
            cv2.putText(canvas, t, (x, int(y + lh * (i + 0.8))), font, scale, col, thick, cv2.LINE_AA)
    elif kind < 0.75:  # stripes: barcodes, railings, grilles
        x, y = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        n, step = int(rng.integers(4, 20)), int(rng.integers(2, 8))
        length = int(rng.uniform(8, 60))
        vertical = rng.random() < 0.6
        for i in range(n):
            if vertical:
                cv2.line(canvas, (x + i * step, y), (x + i * step, y + length), col, max(1, step // 2))
            else:
                cv2.line(canvas, (x, y + i * step), (x + length, y + i * step), col, max(1, step // 2))
    elif kind < 0.9:  # bright blobs: headlights, lamps, reflections
        cx, cy = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        ax, ay = int(rng.uniform(3, 30)), int(rng.uniform(2, 15))
        cv2.ellipse(canvas, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, int(rng.integers(200, 256)), -1)
    else:  # rectangle with a few blobs: a window, a badge
        x, y = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        w, h = int(rng.uniform(10, 80)), int(rng.uniform(6, 40))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), col, int(rng.integers(-1, 3)) or 1)


def photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera effects on the whole grey image: gamma, contrast, blur, noise, JPEG, resampling."""
    out = img.astype(np.float32)
    if rng.random() < 0.8:
        g = np.exp(rng.uniform(-0.5, 0.5))
        out = 255.0 * (out / 255.0) ** g
        out = (out - 128) * rng.uniform(0.6, 1.3) + 128 + rng.uniform(-30, 30)
    out = out.clip(0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.3))
    elif r < 0.37:
        k = int(rng.integers(3, 8))
        kern = np.zeros((k, k), np.float32)
        kern[k // 2, :] = 1.0 / k
        if rng.random() < 0.3:
            kern = cv2.warpAffine(kern, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(-30, 30), 1), (k, k))
            kern /= max(kern.sum(), 1e-6)
        out = cv2.filter2D(out, -1, kern)
    elif r < 0.47:
        f = rng.uniform(0.45, 0.8)
        small = cv2.resize(out, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = (out + rng.normal(0, rng.uniform(1, 8), out.shape)).clip(0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def night_look(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Near-infrared at night: most of the scene dark and noisy (plates are brightened separately)."""
    out = img.astype(np.float32) * rng.uniform(0.05, 0.35)
    out = 255.0 * (out / 255.0) ** rng.uniform(0.8, 1.4)
    return out.clip(0, 255).astype(np.uint8)


def glow(rng: np.random.Generator, face: np.ndarray) -> np.ndarray:
    """A retro-reflective plate under IR: background near white, characters stay dark."""
    f = face.astype(np.float32)
    lo, hi = np.percentile(f, 5), np.percentile(f, 95)
    f = (f - lo) / max(hi - lo, 1.0)
    f = f * rng.uniform(150, 255) + rng.uniform(0, 60)
    return f.clip(0, 255).astype(np.uint8)


@dataclass
class SceneGenerator:
    """Makes (grey image, Nx4 xyxy boxes, Nx4x2 corners) composites in detector input pixels.

    `backgrounds`: grey plate-free images; `plate_makers`: (weight, maker) pairs, each maker
    returning a grey plate face; boxes are the tight axis-aligned boxes of the pasted quads.
    """

    backgrounds: list[np.ndarray]
    plate_makers: list[tuple[float, PlateMaker]] = field(default_factory=lambda: [(1.0, simple_plate)])
    min_width: float = 12.0
    max_width: float = 220.0
    distractors: bool = True  # clutter, badges, lamps, bumpers; off only to test the pasting alone
    recess_share: float = 0.0  # share of day plates set in a light recess (0.0: draws as before it existed)

    def _face(self, rng: np.random.Generator, night: bool) -> np.ndarray:
        w = np.array([p for p, _ in self.plate_makers], np.float64)
        maker = self.plate_makers[int(rng.choice(len(w), p=w / w.sum()))][1]
        return maker(rng, night)

    def _background(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        H, W = size
        if not self.backgrounds:
            base = rng.uniform(40, 200) + rng.normal(0, 25, (H, W))
            return cv2.GaussianBlur(base.clip(0, 255).astype(np.uint8), (0, 0), 3)
        bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        bh, bw = bg.shape[:2]
        s = max(H / bh, W / bw) * np.exp(rng.uniform(0.0, 0.9))
        big = cv2.resize(bg, (max(W, int(bw * s)), max(H, int(bh * s))), interpolation=cv2.INTER_LINEAR)
        y = int(rng.integers(0, big.shape[0] - H + 1))
        x = int(rng.integers(0, big.shape[1] - W + 1))
        out = big[y : y + H, x : x + W]
        return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)

    def plate_width(self, rng: np.random.Generator) -> float:
        """Mostly small plates: two thirds below 60 input pixels, where the misses are."""
        if rng.random() < 0.65:
            return float(np.exp(rng.uniform(np.log(self.min_width), np.log(60))))
        return float(np.exp(rng.uniform(np.log(40), np.log(self.max_width))))

    def sample(self, rng: np.random.Generator, size: tuple[int, int] = (320, 320),
               background: np.ndarray | None = None, n_plates: int | None = None,
               night: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One composite: (grey HxW uint8, boxes Nx4 float32 xyxy, corners Nx4x2 float32)."""
        H, W = size
        canvas = background.copy() if background is not None else self._background(rng, size)
        if night is None:
            night = bool(rng.random() < 0.25)
        if night:
            canvas = night_look(rng, canvas)
        if n_plates is None:
            n_plates = int(rng.choice([0, 1, 1, 1, 2, 2, 3, 4]))
        for _ in range(int(rng.integers(0, 5)) if rng.random() < 0.7 and self.distractors else 0):
            _clutter(rng, canvas)
        boxes: list[np.ndarray] = []
        quads: list[np.ndarray] = []
        placed: list[tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]] = []
        for _ in range(n_plates):
            face = self._face(rng, night)
            w = self.plate_width(rng)
            h = w * face.shape[0] / face.shape[1] * rng.uniform(0.85, 1.15)
            for _try in range(10):
                cx = rng.uniform(w * 0.3, max(W - w * 0.3, w * 0.3 + 1))
                cy = rng.uniform(h, max(H - h, h + 1))
                quad = _quad(rng, cx, cy, w, h)
                box = np.concatenate([quad.min(0), quad.max(0)])
                if all(_overlap(box, b) < 0.01 for b in boxes):
                    break
            else:
                continue
            placed.append((face, quad, (cx, cy, w, h)))
            boxes.append(box)
            quads.append(quad)
        for face, quad, (cx, cy, w, h) in placed if self.distractors else []:  # bumpers first: none may cover a plate
            if rng.random() < 0.5:
                _car_context(rng, canvas, cx, cy, w, h)
            if self.recess_share and not night and rng.random() < self.recess_share:
                _recess(rng, canvas, cx, cy, w, h)
        for _face, _quad_, near in placed if self.distractors else []:
            if rng.random() < 0.5:
                _badge(rng, canvas, near)
            if rng.random() < 0.3:
                _lamp(rng, canvas, near)
        for _ in range(int(rng.integers(0, 3)) if self.distractors else 0):
            _badge(rng, canvas, None)
        for face, quad, _ in placed:
            paste(canvas, glow(rng, face) if night else _tone(rng, face), quad)
        if night and self.distractors and rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 4))):
                _clutter(rng, canvas)
        canvas = photometric(rng, canvas)
        if night:
            canvas = (canvas + rng.normal(0, rng.uniform(2, 10), canvas.shape)).clip(0, 255).astype(np.uint8)
        b = np.array(boxes, np.float32).reshape(-1, 4)
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, W)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, H)
        return canvas, b, np.array(quads, np.float32).reshape(-1, 4, 2)


def _tone(rng: np.random.Generator, face: np.ndarray) -> np.ndarray:
    """Daylight plate tone: dim, shade or wash the face so it is not always crisp black on white."""
    f = face.astype(np.float32) * rng.uniform(0.5, 1.15) + rng.uniform(-20, 20)
    if rng.random() < 0.3:  # shadow across part of the plate
        x = int(rng.uniform(0, face.shape[1]))
        f[:, :x] *= rng.uniform(0.4, 0.85)
    return f.clip(0, 255).astype(np.uint8)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 4)
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 4)
    return ix * iy
