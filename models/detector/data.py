"""Detector training and validation data from ../shared/datasets (never copied into the repo).

Training mixes real labelled scenes (scenes-ro, the training half of scenes-ca) with
composites from models/synth/scenes.py. scenes-ca is split by a fixed hash of the file name
so the other half stays unseen for reporting; scenes-eu and scenes-br are validation only.
"""

from __future__ import annotations

import csv
import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.recognition.detect import DETECTOR_INPUT, PAD_VALUE, STRIDE
from models.synth.scenes import SceneGenerator, photometric, simple_plate

from models import DATASETS  # noqa: E402


def ca_half(name: str) -> str:
    """'train' or 'holdout' for a scenes-ca file: fixed by the SHA-1 of its name, not by chance."""
    return "train" if hashlib.sha1(name.encode()).digest()[0] % 2 == 0 else "holdout"


@dataclass
class Scene:
    name: str
    image: np.ndarray  # grey uint8, original size
    boxes: np.ndarray  # Nx4 xyxy, original pixels


def load_scenes(folder: Path, names: set[str] | None = None) -> list[Scene]:
    """Scenes with boxes from a `labels.tsv` folder (one row per box), grey."""
    per: dict[str, list[list[float]]] = {}
    with open(folder / "labels.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            x, y, w, h = (float(row[k]) for k in "xywh")
            per.setdefault(row["file"], []).append([x, y, x + w, y + h])
    out = []
    for name in sorted(per):
        if names is not None and name not in names:
            continue
        img = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            out.append(Scene(name, img, np.array(per[name], np.float32)))
    return out


def load_grey_folder(folder: Path, max_side: int | None = None) -> list[np.ndarray]:
    out = []
    for p in sorted(glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png"))):
        img = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        if max_side and max(img.shape) > max_side:
            f = max_side / max(img.shape)
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        out.append(img)
    return out


def expand_ca(boxes: np.ndarray) -> np.ndarray:
    """scenes-ca boxes hug the characters; grow them to about the plate for training."""
    b = boxes.copy()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    w, h = (b[:, 2] - b[:, 0]) * 1.15, (b[:, 3] - b[:, 1]) * 1.8
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def us_plate_maker():
    """The lead's synthetic US plate renderer as a grey face maker, or None if not available."""
    try:
        from models.synth.plates import render_plate
    except Exception:  # noqa: BLE001 - optional source; the real crops still train the detector
        return None

    def make(rng: np.random.Generator, night: bool) -> np.ndarray:
        face, _ = render_plate(rng, night=night, degrade=False)
        return cv2.cvtColor(face, cv2.COLOR_BGR2GRAY) if face.ndim == 3 else face

    return make


def crop_maker(crops: list[np.ndarray]):
    def make(rng: np.random.Generator, night: bool) -> np.ndarray:
        return crops[int(rng.integers(len(crops)))]

    return make


def gaussian_targets(boxes: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap [1,h,w], regression [4,h,w] and regression weight [1,h,w] for xyxy boxes.

    Peak at the cell holding the box centre; an elliptic Gaussian sized by the box (TTFNet
    style) elsewhere. Regression is supervised on the whole Gaussian, weighted by it, with
    each cell's own offset to the centre, so the decode at any peak cell is consistent.
    """
    h, w = out_hw
    heat = np.zeros((h, w), np.float32)
    reg = np.zeros((4, h, w), np.float32)
    wt = np.zeros((h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))  # small last: they win
    for x1, y1, x2, y2 in boxes[order]:
        bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        ci, cj = int(cx), int(cy)
        if not (0 <= ci < w and 0 <= cj < h):
            continue
        sx = max(0.54 * bw / STRIDE / 6, 0.6)
        sy = max(0.54 * bh / STRIDE / 6, 0.6)
        g = np.exp(-((xs - ci) ** 2 / (2 * sx * sx) + (ys - cj) ** 2 / (2 * sy * sy)))
        g[cj, ci] = 1.0
        heat = np.maximum(heat, g)
        m = g > 0.05
        reg[0][m] = cx - xs[m]
        reg[1][m] = cy - ys[m]
        reg[2][m] = np.log(bw / STRIDE)
        reg[3][m] = np.log(bh / STRIDE)
        wt[m] = np.maximum(wt[m], g[m])
    return heat[None], reg, wt[None]


def turn_scene(img: np.ndarray, boxes: np.ndarray, degrees: float,
               border: int = cv2.BORDER_REFLECT) -> tuple[np.ndarray, np.ndarray]:
    """A scene turned by `degrees` about its centre, its plates' boxes (x0, y0, x1, y1) the boxes that
    enclose them turned: what the detector is to find for a rolled plate."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(degrees), 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x0, y1], 1), np.stack([x1, y1], 1)], 1)
    moved = corners @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)  # N x 4 x 2
    return out, np.concatenate([moved.min(1), moved.max(1)], 1).astype(np.float32)


def rolled(rng: np.random.Generator, img: np.ndarray, boxes: np.ndarray, max_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """A real scene turned by up to `max_deg` either way (`turn_scene`): a camera or a car rolled a few
    degrees. Scenes' plates are level; photos' are not."""
    return turn_scene(img, boxes, float(rng.uniform(-max_deg, max_deg)))


class TrainSampler:
    """Makes training crops (grey, detector-input scale) with their boxes."""

    def __init__(self, root: Path = DATASETS, crop: int = 320, log=print, max_width: float = 220.0,
                 recess_share: float = 0.0, roll_share: float = 0.0, roll_deg: float = 10.0) -> None:
        self.crop = crop
        self.roll_share, self.roll_deg = roll_share, roll_deg
        self.ro = load_scenes(root / "scenes-ro")
        ca_all = load_scenes(root / "scenes-ca")
        self.ca = [Scene(s.name, s.image, expand_ca(s.boxes)) for s in ca_all if ca_half(s.name) == "train"]
        negatives = load_grey_folder(root / "negatives")
        crops_eu = load_grey_folder(root / "crops-eu")
        crops_br = load_grey_folder(root / "crops-br")
        makers: list[tuple[float, object]] = [(0.1, simple_plate)]
        if crops_eu:
            makers.append((0.3, crop_maker(crops_eu)))
        if crops_br:
            makers.append((0.2, crop_maker(crops_br)))
        us = us_plate_maker()
        if us is not None:
            makers.append((0.4, us))
        self.us = us is not None
        # real scenes as backgrounds too: their plates stay labelled, see sample()
        self.gen = SceneGenerator(backgrounds=negatives, plate_makers=makers, max_width=max_width,
                                  recess_share=recess_share)
        log(f"data: scenes-ro {len(self.ro)}, scenes-ca train half {len(self.ca)}, negatives {len(negatives)}, "
            f"crops-eu {len(crops_eu)}, crops-br {len(crops_br)}, synthetic US plates {'yes' if self.us else 'no'}")

    def real_crop(self, rng: np.random.Generator, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        img, boxes = scene.image, scene.boxes
        H, W = DETECTOR_INPUT
        s0 = min(H / img.shape[0], W / img.shape[1])
        s = s0 * float(np.exp(rng.uniform(np.log(0.4), np.log(1.7))))
        minw = float((boxes[:, 2] - boxes[:, 0]).min()) if len(boxes) else 50.0
        s = max(s, 11.0 / max(minw, 1.0))
        s = min(s, 260.0 / max(float((boxes[:, 2] - boxes[:, 0]).max()), 1.0)) if len(boxes) else s
        big = cv2.resize(img, (max(1, int(img.shape[1] * s)), max(1, int(img.shape[0] * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        b = boxes * s
        if len(b) and self.roll_share and rng.random() < self.roll_share:
            big, b = rolled(rng, big, b, self.roll_deg)
        c = self.crop
        if len(b) and rng.random() < 0.85:
            t = b[int(rng.integers(len(b)))]
            cx = rng.uniform(t[2] - c + 8, t[0] - 8) if c > (t[2] - t[0]) + 16 else t[0]
            cy = rng.uniform(t[3] - c + 8, t[1] - 8) if c > (t[3] - t[1]) + 16 else t[1]
            x0, y0 = int(cx), int(cy)
        else:
            x0 = int(rng.integers(min(0, big.shape[1] - c), max(1, big.shape[1] - c + 1)))
            y0 = int(rng.integers(min(0, big.shape[0] - c), max(1, big.shape[0] - c + 1)))
        out = np.full((c, c), PAD_VALUE, np.uint8)
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + c, big.shape[1]), min(y0 + c, big.shape[0])
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = big[sy0:sy1, sx0:sx1]
        b = b - np.array([x0, y0, x0, y0], np.float32)
        vis = b.copy()
        vis[:, [0, 2]] = vis[:, [0, 2]].clip(0, c)
        vis[:, [1, 3]] = vis[:, [1, 3]].clip(0, c)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        varea = (vis[:, 2] - vis[:, 0]).clip(0) * (vis[:, 3] - vis[:, 1]).clip(0)
        keep = varea >= 0.6 * np.maximum(area, 1e-6)
        if rng.random() < 0.5:
            out = np.ascontiguousarray(out[:, ::-1])
            vis = vis.copy()
            vis[:, [0, 2]] = c - vis[:, [2, 0]]
        return photometric(rng, out), vis[keep]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r = rng.random()
        if r < 0.25:
            return self.real_crop(rng, self.ro[int(rng.integers(len(self.ro)))])
        if r < 0.35 and self.ca:
            return self.real_crop(rng, self.ca[int(rng.integers(len(self.ca)))])
        if r < 0.45:  # plates pasted into a real scene whose plates stay labelled
            pool = self.ro + self.ca
            scene = pool[int(rng.integers(len(pool)))]
            bg, boxes = self.real_crop(rng, scene)
            img, nb, _ = self.gen.sample(rng, (self.crop, self.crop), background=bg,
                                         n_plates=int(rng.integers(1, 3)), night=False)
            keep = [i for i, bb in enumerate(nb) if not _hits(bb, boxes)]
            return img, np.concatenate([boxes, nb[keep]]) if len(keep) else boxes
        img, boxes, _ = self.gen.sample(rng, (self.crop, self.crop))
        return img, boxes

    def batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        c = self.crop
        imgs = np.empty((n, 1, c, c), np.float32)
        heats = np.empty((n, 1, c // STRIDE, c // STRIDE), np.float32)
        regs = np.empty((n, 4, c // STRIDE, c // STRIDE), np.float32)
        wts = np.empty((n, 1, c // STRIDE, c // STRIDE), np.float32)
        for i in range(n):
            img, boxes = self.sample(rng)
            imgs[i, 0] = img.astype(np.float32) / 255.0
            heats[i], regs[i], wts[i] = gaussian_targets(boxes, (c // STRIDE, c // STRIDE))
        return imgs, heats, regs, wts


def _hits(box: np.ndarray, boxes: np.ndarray) -> bool:
    if not len(boxes):
        return False
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(((ix > -4) & (iy > -4)).any())


def validation_sets(root: Path = DATASETS) -> dict[str, list[Scene]]:
    """The sets reported on: scenes-ca hold-out half (hugging boxes as labelled), eu, br."""
    ca_names = {n for n in _names(root / "scenes-ca") if ca_half(n) == "holdout"}
    return {
        "scenes-ca-holdout": load_scenes(root / "scenes-ca", ca_names),
        "scenes-eu": load_scenes(root / "scenes-eu"),
        "scenes-br": load_scenes(root / "scenes-br"),
    }


def _names(folder: Path) -> set[str]:
    with open(folder / "labels.tsv", newline="") as f:
        return {row["file"] for row in csv.DictReader(f, delimiter="\t")}
