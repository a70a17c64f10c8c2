"""One plate image from many frames of one vehicle: the nearest views aligned and averaged.

A vehicle's plate is seen in tens of frames, each with its own sensor noise, JPEG loss and
sub-pixel phase. Where the frames' votes split between an O and a 0 (firmware.tracking), the
glyph widths that tell them apart are too noisy in any one frame. Aligning the nearest views to
the widest one (ECC, affine, on the views scaled to twice its size) and averaging them cuts the
noise by about the square root of their number and keeps the detail that sub-pixel shifts
spread across frames: the multi-frame fusion traffic cameras use. The tracker reads the O/0 and
I/1 glyphs once on the fused plate (`Recognizer.settle_fused`). Reading the fused plate with
the OCR as one more voter changed no vehicle on the simulated road (commit 4e21237, reverted).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_VIEWS = 3  # fewer aligned views than this and there is nothing to fuse
FUSED_SCALE = 2.0  # the fused plate is drawn this many times the widest view's size ...
FUSED_MAX_WIDTH = 256  # ... but no wider (the OCR reads 128 columns)
MARGIN_X, MARGIN_Y = 0.25, 0.5  # of the plate's width / height around it, for the alignment to work on
MIN_CORRELATION = 0.6  # an ECC fit below this is a view of something else (an occluder, a cut plate)


@dataclass(slots=True)
class View:
    """One frame's plate: the frame cut around the detector's box, and the box within that cut."""

    image: np.ndarray  # HxW or HxWx3 uint8
    box: tuple[int, int, int, int]  # x, y, w, h in `image`


def cut_view(frame: np.ndarray, box: tuple[int, int, int, int]) -> View:
    """The part of `frame` fusion needs around the plate at `box` (a copy: the frame is not kept)."""
    x, y, w, h = box
    H, W = frame.shape[:2]
    x0, y0 = max(0, int(x - MARGIN_X * w)), max(0, int(y - MARGIN_Y * h))
    x1, y1 = min(W, int(x + w + MARGIN_X * w + 1)), min(H, int(y + h + MARGIN_Y * h + 1))
    return View(frame[y0:y1, x0:x1].copy(), (x - x0, y - y0, w, h))


def _grey(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    return g.astype(np.float32) / 255.0


def _to_canvas(v: View, w_out: float, size: tuple[int, int]) -> np.ndarray:
    """2x3 affine taking canvas pixels to `v.image` pixels: the view's plate scaled to `w_out` wide,
    centred in a canvas of `size` (w, h)."""
    x, y, w, h = v.box
    s = w_out / max(w, 1)
    cx, cy = x + w / 2, y + h / 2
    # canvas u -> image: (u - size/2) / s + centre
    return np.float32([[1 / s, 0, cx - size[0] / 2 / s], [0, 1 / s, cy - size[1] / 2 / s]])


@dataclass(slots=True)
class Fused:
    """The averaged plate: its image, the plate's box in it and how many views went into it."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    views: int


def fuse(views: list[View]) -> Fused | None:
    """The widest view and the others aligned to it, averaged, or None when fewer than MIN_VIEWS
    views align (ECC correlation MIN_CORRELATION or more)."""
    if len(views) < MIN_VIEWS:
        return None
    ref = max(views, key=lambda v: v.box[2])
    rw, rh = ref.box[2], ref.box[3]
    w_out = float(min(FUSED_MAX_WIDTH, FUSED_SCALE * rw))
    h_out = w_out * rh / max(rw, 1)
    size = (int(round(w_out * (1 + 2 * MARGIN_X))), int(round(h_out * (1 + 2 * MARGIN_Y))))
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    ref_map = _to_canvas(ref, w_out, size)
    ref_img = cv2.warpAffine(ref.image, ref_map, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    template = _grey(ref_img)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
    acc = ref_img.astype(np.float32)
    n = 1
    for v in views:
        if v is ref or v.image.ndim != ref.image.ndim:
            continue
        m = _to_canvas(v, w_out, size)
        moved = cv2.warpAffine(v.image, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            cc, warp = cv2.findTransformECC(template, _grey(moved), warp, cv2.MOTION_AFFINE, criteria, None, 5)
        except cv2.error:  # did not converge: a view of something else
            continue
        if cc < MIN_CORRELATION:
            continue
        # one interpolation from the frame's pixels: canvas -> (ECC) -> moved canvas -> (m) -> view image
        full = np.vstack([m, [0, 0, 1]]) @ np.vstack([warp, [0, 0, 1]])
        acc += cv2.warpAffine(v.image, full[:2].astype(np.float32), size, flags=flags,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        n += 1
    if n < MIN_VIEWS:
        return None
    fused = np.clip(acc / n + 0.5, 0, 255).astype(np.uint8)
    box = (int(round((size[0] - w_out) / 2)), int(round((size[1] - h_out) / 2)), int(round(w_out)), int(round(h_out)))
    return Fused(fused, box, n)
