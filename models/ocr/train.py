"""Train the plate OCR: synthetic US plates plus real crops, resumable, with progress.

Each batch mixes synthetic shards (models.ocr.gen), real Brazilian crops
(crops-br: real texture and degradation) and one half of the real US crops
(us-crops-dev, split by a hash of the file name; the other half is only ever
used for validation) and, with --ca-share, crops cut behind the shipped
detector from scenes-ca's detector-training half, and with --pseudo real plates
read by a trained OCR (models.ocr.pseudo). Crops-ar is validation only.
Cosine learning-rate decay with warm-up; `last.pt` is written every epoch and
training resumes from it; `best.pt` keeps the checkpoint with the best mean
exact read rate on the US validation half and the scenes-ca hold-out crops;
--keep-every keeps snapshots that `models.ocr.export` can average.
--init-onnx fine-tunes the shipped model (batch norm frozen); --init-ckpt starts from
another run's weights (a ctc run starting ctc-2x).

--all-us is for the model that ships once a recipe has been chosen on the split: it
trains on both halves of us-crops-dev and of scenes-ca, the only real US plates there
are. Its figures on those sets are then training figures; the recipe's own validation
figures come from the same command without --all-us, and its temperature too.

    python -m models.ocr.train --run models/runs/ocr --steps 30000
    python -m models.ocr.train --run models/runs/ocr-ft --init-onnx models/plate_ocr.onnx \
        --ca-share 0.1 --lr 6e-4 --steps 6000
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from firmware.recognition.ocr import CHARSET, OCR_H, OCR_W, PAD, SLOTS, encode, normalise
from models import fixed_plate, warmstart
from models.ocr import pseudo, reshuffle, stored
from models.ocr.net import ARCHS, PlateCTC

from models import DATASETS, us_fold  # noqa: E402
log = logging.getLogger("ocr.train")


def load_crops(folder: Path, fold: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real labelled crops (labels.csv) as grey OCR_H x OCR_W uint8 arrays and slot labels."""
    images, labels, texts = [], [], []
    with open(folder / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            if fold and us_fold(row["file"]) != fold:
                continue
            text = normalise(fixed_plate(folder.name, row["file"], row["plate"]))
            if not 0 < len(text) <= SLOTS:
                continue
            img = cv2.imread(str(folder / row["file"]))
            if img is None:
                continue
            images.append(stored(img))
            labels.append(encode(text))
            texts.append(text)
    return np.stack(images), np.stack(labels), texts


SCENE_MARGINS = (-0.06, -0.03, 0.0, 0.04)  # the trims around the runtime's that scene crops are cut at


def load_scene_crops(folder: Path, names: set[str] | None,
                     margins: tuple[float, ...] = SCENE_MARGINS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """OCR crops cut from labelled scenes the way the appliance cuts them.

    The shipped detector runs on each scene; a detection whose centre lies in a
    labelled box gives crops at several trims around `plate_crop`'s default,
    so the OCR learns the framing, blur and scale it meets behind the detector
    (real US plates from scenes-ca's detector-training half, never its hold-out half).
    """
    from firmware.config import RecognitionConfig
    from firmware.recognition import default_models_dir, detect, detector_threshold, plate_crop
    from firmware.recognition.manifest import load as load_manifest
    from firmware.recognition.runtime import create as create_runtime

    # the detector alone: the shipped OCR may be cut for another crop size than the one being trained
    cfg = RecognitionConfig()
    spec = load_manifest(default_models_dir())["detector"]
    detector, threshold = create_runtime(cfg).load(spec), detector_threshold(cfg, spec)
    rows: dict[str, list[tuple[float, float, float, float, str]]] = {}
    with open(folder / "labels.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            text = normalise(fixed_plate(folder.name, row["file"], row["plate"] or ""))  # labels.tsv: fixes.tsv
            if text and 0 < len(text) <= SLOTS and (names is None or row["file"] in names):
                rows.setdefault(row["file"], []).append((float(row["x"]), float(row["y"]), float(row["w"]),
                                                         float(row["h"]), text))
    images, labels, texts = [], [], []
    for name, boxes in sorted(rows.items()):
        frame = cv2.imread(str(folder / name))
        if frame is None:
            continue
        dets = detect.find(detector, frame, threshold, cfg.nms_iou, cfg.max_plates)
        for x, y, w, h, text in boxes:
            d = detect.centred_in(dets, (x, y, w, h))
            if d is None:
                continue
            for m in margins:
                crop = plate_crop(frame, d, m)
                if crop.shape[0] < 4 or crop.shape[1] < 8:
                    continue
                images.append(stored(crop))
                labels.append(encode(text))
                texts.append(text)
    return np.stack(images), np.stack(labels), texts


def augment(rng: np.random.Generator, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Cheap geometric and photometric jitter on a grey OCR crop."""
    h, w = img.shape
    if rng.random() < 0.8 * strength:
        s = rng.uniform(0.85, 1.12)
        a = rng.normal(0, 3)
        M = cv2.getRotationMatrix2D((w / 2, h / 2), a, s)
        M[0, 1] += rng.normal(0, 0.08)
        M[:, 2] += rng.normal(0, 1, 2) * [w * 0.04, h * 0.05]
        img = cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REPLICATE)
    f = img.astype(np.float32)
    if rng.random() < 0.7 * strength:
        f = f * rng.uniform(0.5, 1.4) + rng.uniform(-40, 40)
    if rng.random() < 0.3 * strength:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.4, 1.3))
    if rng.random() < 0.4 * strength:
        f = f + rng.normal(0, rng.uniform(2, 14), f.shape)
    if rng.random() < 0.05:
        f = 255 - f
    return np.clip(f, 0, 255).astype(np.uint8)


def roll(rng: np.random.Generator, img: np.ndarray, max_deg: float) -> np.ndarray:
    """The crop of a plate rolled in the image plane, framed as the detector's axis-aligned box
    frames it: the plate turned by up to `max_deg` inside the box that encloses it, then
    stretched back to the OCR's size (the appliance resizes every crop without keeping its
    aspect). Photos show plates rolled 10-20 degrees, which the OCR read badly (docs/recognition.md)."""
    h, w = img.shape
    a = rng.uniform(-max_deg, max_deg)
    c, s = abs(np.cos(np.radians(a))), abs(np.sin(np.radians(a)))
    bw, bh = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    px, py = (bw - w) // 2 + 1, (bh - h) // 2 + 1
    big = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REFLECT)
    M = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), a, 1.0)
    turned = cv2.warpAffine(big, M, (big.shape[1], big.shape[0]), borderMode=cv2.BORDER_REFLECT)
    y0, x0 = (turned.shape[0] - bh) // 2, (turned.shape[1] - bw) // 2
    return cv2.resize(turned[y0:y0 + bh, x0:x0 + bw], (w, h), interpolation=cv2.INTER_AREA)


def smear(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A crop as a moving car or a far plate leaves it: motion blur along the road (3-9 px, within
    12 degrees of level) or a resolution of 36-72 px across, often both. Blurred plates are a third
    of the scenes-ca hold-out's misreads."""
    h, w = img.shape
    out = img
    if rng.random() < 0.7:
        n = int(rng.integers(3, 10))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        M = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(-12, 12), 1.0)
        k = cv2.warpAffine(k, M, (n, n))
        out = cv2.filter2D(out, -1, k / max(float(k.sum()), 1e-6), borderType=cv2.BORDER_REPLICATE)
    if rng.random() < 0.6:
        sw = int(rng.integers(36, 73))
        sh = max(8, int(round(sw * h / w)))
        out = cv2.resize(cv2.resize(out, (sw, sh), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def jpeg_loss(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A crop as a hard-compressed photo leaves it: the plate at the 56-160 px across it had in the
    frame, JPEG-coded there at quality 15-60 (blocks the size of a stroke, ringing round the glyphs),
    then scaled back to the OCR's size. At quality 25 the shipped pair read 6 % fewer scenes-ca
    hold-out plates and a quarter fewer scenes-us-speed ones (benchmarks/scene_conditions.py)."""
    h, w = img.shape
    sw = int(rng.integers(56, 161))
    sh = max(8, int(round(sw * h / w)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
    coded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else small
    return cv2.resize(coded, (w, h), interpolation=cv2.INTER_LINEAR)


def fit_shard(images: np.ndarray) -> np.ndarray:
    """Shard crops at the OCR's input size: shards rendered for another size are resized,
    so one set of rendered plates serves models of several input widths."""
    if images.shape[1:] == (OCR_H, OCR_W):
        return images
    return np.stack([cv2.resize(im, (OCR_W, OCR_H), interpolation=cv2.INTER_AREA) for im in images])


class Mixer:
    """Draws mixed batches from synthetic shards and real crop pools."""

    def __init__(self, synth_dir: Path, real: list[tuple[np.ndarray, np.ndarray, float]], seed: int,
                 roll_share: float = 0.0, roll_deg: float = 18.0, smear_share: float = 0.0,
                 cuts: list[list[np.ndarray | None]] | None = None, reshuffle_share: float = 0.0,
                 reshuffle_format: bool = False, jpeg_share: float = 0.0) -> None:
        self.synth_dir = synth_dir
        self.real = real
        self.cuts, self.reshuffle_share = cuts, reshuffle_share  # per real pool, per crop (reshuffle.align)
        self.reshuffle_format = reshuffle_format
        self.roll_share, self.roll_deg, self.smear_share = roll_share, roll_deg, smear_share
        self.jpeg_share = jpeg_share
        self.rng = np.random.default_rng(seed)
        self.synth_x = np.zeros((0, OCR_H, OCR_W), np.uint8)
        self.synth_y = np.zeros((0, SLOTS), np.int64)
        self.loaded: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Pick up shards the generators have finished since the last epoch."""
        new = [p for p in sorted(glob.glob(str(self.synth_dir / "*.npz"))) if p not in self.loaded and ".tmp" not in p]
        xs, ys = [self.synth_x], [self.synth_y]
        for p in new:
            try:
                d = np.load(p)
                xs.append(fit_shard(d["images"]))
                ys.append(d["labels"])
                self.loaded.add(p)
            except Exception as exc:  # a shard being written: take it next time
                log.warning("skipping shard %s: %s", p, exc)
        self.synth_x, self.synth_y = np.concatenate(xs), np.concatenate(ys)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        imgs, labs = [], []
        n_real = [int(round(size * share)) for _, _, share in self.real]
        n_synth = size - sum(n_real) if len(self.synth_x) else 0
        for p, ((x, y, _), n) in enumerate(zip(self.real, n_real)):
            for i in self.rng.integers(0, len(x), n):
                img, lab = x[i], y[i]
                bounds = self.cuts[p][i] if self.cuts else None
                if bounds is not None and self.rng.random() < self.reshuffle_share:
                    img, lab = reshuffle.reshuffle(self.rng, img, lab, bounds, self.reshuffle_format)
                imgs.append(augment(self.rng, img))
                labs.append(lab)
        if n_synth:
            idx = self.rng.integers(0, len(self.synth_x), n_synth)
            imgs += [augment(self.rng, self.synth_x[i], 0.5) for i in idx]
            labs += [self.synth_y[i] for i in idx]
        if self.smear_share:
            imgs = [smear(self.rng, im) if self.rng.random() < self.smear_share else im for im in imgs]
        if self.jpeg_share:
            imgs = [jpeg_loss(self.rng, im) if self.rng.random() < self.jpeg_share else im for im in imgs]
        if self.roll_share:
            imgs = [roll(self.rng, im, self.roll_deg) if self.rng.random() < self.roll_share else im for im in imgs]
        x = torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32) / 255.0)
        return x, torch.from_numpy(np.stack(labs))


def _text(labels, ctc: bool) -> str:
    out, prev = [], None
    for c in labels:
        if c != PAD and not (ctc and c == prev):
            out.append(CHARSET[c])
        prev = c
    return "".join(out)


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, ctc: bool = False, freeze_bn: bool = False) -> dict:
    """Exact greedy reads (and per-character similarity) on real crops."""
    model.eval()
    device = next(model.parameters()).device
    preds = []
    for i in range(0, len(x), 128):
        xb = torch.from_numpy(x[i: i + 128][:, None].astype(np.float32) / 255.0).to(device)
        preds.append(model(xb).argmax(-1).cpu().numpy())
    warmstart.train_mode(model, freeze_bn)
    pt = [_text(r, ctc) for r in np.concatenate(preds)]
    yt = [_text(r, False) for r in y]
    exact = float(np.mean([a == b for a, b in zip(pt, yt)]))
    import difflib

    char = float(np.mean([difflib.SequenceMatcher(None, a, b).ratio() for a, b in zip(pt, yt)]))
    return {"exact": round(exact, 4), "char_sim": round(char, 4), "n": len(x)}


def ctc_loss(logits: torch.Tensor, y: torch.Tensor, fn: nn.CTCLoss) -> torch.Tensor:
    logp = logits.log_softmax(-1).transpose(0, 1)  # T, N, C
    lengths = (y != PAD).sum(1)
    targets = y[y != PAD]
    T = torch.full((y.shape[0],), logp.shape[0], dtype=torch.long, device=logp.device)
    return fn(logp, targets, T, lengths)


def start_from(model: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Load another run's weights into `model`; tensors the model has and they lack keep their
    initial values (ctc-2x's upsampling layer from a ctc run). Returns those tensors' names;
    a tensor the model lacks or of another shape is refused by name."""
    own = model.state_dict()
    wrong = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ValueError(f"weights do not fit this network: {wrong[:5]}")
    return model.load_state_dict(weights, strict=False).missing_keys


Pool = tuple[np.ndarray, np.ndarray]  # crops, slot labels


def _pool_loaders() -> dict[str, Callable[[], Pool]]:
    """Every real crop pool a run can use, by name, each loaded only when asked for: the US crops by
    half, scenes-ca's crops behind the detector by half (the hold-out also at the runtime's trim alone,
    for validation)."""
    from models.detector.data import ca_half

    def scenes(half: str, margins: tuple[float, ...] = SCENE_MARGINS) -> Callable[[], Pool]:
        def load() -> Pool:
            names = {n for n in os.listdir(DATASETS / "scenes-ca") if ca_half(n) == half}
            return load_scene_crops(DATASETS / "scenes-ca", names, margins)[:2]
        return load

    return {"br": lambda: load_crops(DATASETS / "crops-br")[:2],
            "us_train": lambda: load_crops(DATASETS / "us-crops-dev", "train")[:2],
            "us_val": lambda: load_crops(DATASETS / "us-crops-dev", "val")[:2],
            "ar": lambda: load_crops(DATASETS / "crops-ar")[:2],
            "ca_train": scenes("train"), "ca_hold_all": scenes("holdout"), "ca_hold": scenes("holdout", (-0.03,))}


def pack_pools(path: Path) -> None:
    """Every real crop pool in one compressed file: what a machine without `../shared/datasets`
    (a lent GPU machine) trains from with --pools."""
    pools = {f"{k}_{a}": v for k, load in _pool_loaders().items() for a, v in zip("xy", load())}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **pools)
    os.replace(tmp, path)
    log.info("packed %s", {k[:-2]: len(v) for k, v in pools.items() if k.endswith("_x")})


def real_pools(all_us: bool, with_ca: bool, packed: Path | None) -> dict[str, Pool]:
    """The real crops a run trains and validates on: br, us_tr, us_va, ar, ca_hold and (with_ca) ca,
    from the datasets or from a `pack_pools` file. With `all_us` both halves of the US sets train."""
    loaders = _pool_loaders()
    if packed is not None:
        try:
            d = np.load(packed)
            missing = {f"{k}_{a}" for k in loaders for a in "xy"} - set(d.files)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--pools {packed}: not readable ({exc}); make it with --pack") from None
        if missing:
            raise SystemExit(f"--pools {packed}: not a --pack file (lacks {', '.join(sorted(missing))})")
        loaders = {k: (lambda k=k: (d[f"{k}_x"], d[f"{k}_y"])) for k in loaders}
    loaded: dict[str, Pool] = {}

    def get(*keys: str) -> Pool:
        for k in keys:
            if k not in loaded:
                loaded[k] = loaders[k]()
        return np.concatenate([loaded[k][0] for k in keys]), np.concatenate([loaded[k][1] for k in keys])

    out = {"br": get("br"), "us_tr": get("us_train", "us_val") if all_us else get("us_train"),
           "us_va": get("us_val"), "ar": get("ar"), "ca_hold": get("ca_hold")}
    if with_ca:
        out["ca"] = get("ca_train", "ca_hold_all") if all_us else get("ca_train")
    return out


class Batches(torch.utils.data.IterableDataset):
    """Endless mixed batches drawn by DataLoader worker processes, each with its own random stream
    (on a GPU the network outruns one process drawing and augmenting crops)."""

    def __init__(self, mixer: Mixer, size: int, seed: int) -> None:
        self.mixer, self.size, self.seed = mixer, size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        cv2.setNumThreads(1)
        self.mixer.rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            yield self.mixer.batch(self.size)


def lr_at(step: int, total: int, base: float, warmup: int = 300) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("models/runs/ocr"))
    ap.add_argument("--synth", type=Path, default=Path("models/cache/ocr_synth"))
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epoch-steps", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--br-share", type=float, default=0.22)
    ap.add_argument("--us-share", type=float, default=0.12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="ctc")
    ap.add_argument("--ca-share", type=float, default=0.0,
                    help="share of crops cut from scenes-ca's detector-training half")
    init = ap.add_mutually_exclusive_group()
    init.add_argument("--init-onnx", type=Path, default=None,
                      help="warm start from a shipped ONNX OCR (batch norm stays frozen)")
    init.add_argument("--init-ckpt", type=Path, default=None,
                      help="start from another run's checkpoint, batch norm learning (a ctc run's weights "
                           "start ctc-2x: only the new upsampling layer is missing, and it starts as a copy)")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--roll-share", type=float, default=0.0,
                    help="share of each batch shown rolled in the image plane, framed as the detector frames it")
    ap.add_argument("--roll-deg", type=float, default=18.0, help="largest roll, degrees")
    ap.add_argument("--smear-share", type=float, default=0.0,
                    help="share of each batch shown motion-blurred or at low resolution (train.smear)")
    ap.add_argument("--jpeg-share", type=float, default=0.0,
                    help="share of each batch shown JPEG-coded at the size the plate had in the frame (train.jpeg_loss)")
    ap.add_argument("--reshuffle-share", type=float, default=0.0,
                    help="share of real crops shown with their characters reordered (models.ocr.reshuffle: real "
                         "glyphs in texts nobody registered; cut where --align-onnx reads the crop as labelled)")
    ap.add_argument("--reshuffle-format", action="store_true",
                    help="reshuffled plates keep their serial format: letters trade places with letters, digits "
                         "with digits")
    ap.add_argument("--align-onnx", type=Path, default=None,
                    help="the OCR that places the cuts for --reshuffle-share (default: --init-onnx, else the "
                         "shipped model)")
    ap.add_argument("--pseudo", type=Path, default=None,
                    help="a pool of pseudo-labelled real crops (models.ocr.pseudo) to train on beside the labelled ones")
    ap.add_argument("--pseudo-share", type=float, default=0.1, help="share of each batch from --pseudo")
    ap.add_argument("--all-us", action="store_true",
                    help="train on both halves of us-crops-dev and scenes-ca (the shipping run of a recipe "
                         "chosen on the split: the validation figures printed are then training figures)")
    ap.add_argument("--keep-every", type=int, default=0,
                    help="also keep step_NNNNN.pt every N steps (for weight averaging at export)")
    ap.add_argument("--device", default="cpu", help="torch device (cuda on a GPU machine)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes drawing batches (0: the training process draws them between steps)")
    ap.add_argument("--pack", type=Path, default=None,
                    help="write every real crop pool to this .npz and stop (for a machine without the datasets)")
    ap.add_argument("--pools", type=Path, default=None, help="read the real crop pools from a --pack file")
    args = ap.parse_args()
    if args.pack:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        pack_pools(args.pack)
        return
    if args.keep_every % args.epoch_steps:
        ap.error(f"--keep-every {args.keep_every} must be a multiple of --epoch-steps {args.epoch_steps} "
                 "(snapshots are written at the end of an epoch)")

    args.run.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(args.run / "train.log"), logging.StreamHandler()])
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    real = real_pools(args.all_us, args.ca_share > 0, args.pools)
    br, us_tr, us_va, ar, ca_hold = real["br"], real["us_tr"], real["us_va"], real["ar"], real["ca_hold"]
    log.info("real crops: crops-br %d, us-dev train %d, us-dev val %d, crops-ar %d, scenes-ca hold-out %d",
             len(br[0]), len(us_tr[0]), len(us_va[0]), len(ar[0]), len(ca_hold[0]))
    pools = [(br[0], br[1], args.br_share), (us_tr[0], us_tr[1], args.us_share)]
    if args.ca_share > 0:
        log.info("scenes-ca %s crops behind the detector: %d", "all" if args.all_us else "training-half",
                 len(real["ca"][0]))
        pools.append((real["ca"][0], real["ca"][1], args.ca_share))
    if args.pseudo:
        px, py = pseudo.load(args.pseudo)
        log.info("pseudo-labelled crops from %s: %d", args.pseudo, len(px))
        pools.append((px, py, args.pseudo_share))
    cuts = None
    if args.reshuffle_share > 0:
        from firmware.recognition import default_models_dir

        aligner = args.align_onnx or args.init_onnx or default_models_dir() / "plate_ocr.onnx"
        cuts = [reshuffle.align(aligner, x, y) for x, y, _ in pools]
        log.info("reshuffle: cuts by %s for %s of the real crops", aligner,
                 " / ".join(f"{sum(c is not None for c in cs)} of {len(cs)}" for cs in cuts))
    mixer = Mixer(args.synth, pools, args.seed, args.roll_share, args.roll_deg, args.smear_share,
                  cuts, args.reshuffle_share, args.reshuffle_format, args.jpeg_share)

    device = torch.device(args.device)
    model = ARCHS[args.arch]()
    ctc = isinstance(model, PlateCTC)
    freeze_bn = args.init_onnx is not None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, best = 0, -1.0
    last = args.run / "last.pt"
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, best = ck["step"], ck.get("best", -1.0)
        freeze_bn = ck.get("freeze_bn", freeze_bn)
        mixer.rng = np.random.default_rng(args.seed + step)
        log.info("resumed from %s at step %d (best %.4f)", last, step, best)
    elif args.init_onnx:
        shipped = warmstart.shipped_arch(args.init_onnx)
        if shipped != args.arch and (shipped, args.arch) != ("ctc", "ctc-g"):
            raise SystemExit(f"--init-onnx {args.init_onnx} is a {shipped} network: train it with --arch {shipped} "
                             "(only a ctc file starts another architecture: ctc-g, whose attention starts at zero)")
        warmstart.load_shipped_ocr(model, args.init_onnx)
        log.info("warm start from %s", args.init_onnx)
    elif args.init_ckpt:
        missing = start_from(model, torch.load(args.init_ckpt, map_location="cpu", weights_only=False)["model"])
        log.info("started from %s (left as initialised: %s)", args.init_ckpt, missing)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    ctc_fn = nn.CTCLoss(blank=PAD, zero_infinity=True)
    warmstart.train_mode(model, freeze_bn)
    # loaded on the CPU (a warm start checks its outputs there), then moved in place; reloading the
    # optimizer's state casts a resumed run's moments to the parameters' device
    model.to(device)
    opt.load_state_dict(opt.state_dict())
    loader = None
    if args.workers:  # shards are read once: the workers hold copies of the mixer
        loader = iter(torch.utils.data.DataLoader(Batches(mixer, args.batch, args.seed + step), batch_size=None,
                                                  num_workers=args.workers, prefetch_factor=4))
    bar = tqdm(total=args.steps, initial=step, desc="ocr", mininterval=10)
    while step < args.steps:
        if loader is None:
            mixer.refresh()
        t0, run_loss = time.time(), 0.0
        for _ in range(args.epoch_steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
            x, y = next(loader) if loader is not None else mixer.batch(args.batch)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            if ctc:
                loss = ctc_loss(logits, y, ctc_fn)
            else:
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += float(loss.detach())
            step += 1
            bar.update(1)
            if step >= args.steps:
                break
        ev_us, ev_ar = (evaluate(model, us_va[0], us_va[1], ctc, freeze_bn),
                        evaluate(model, ar[0], ar[1], ctc, freeze_bn))
        ev_ca = evaluate(model, ca_hold[0], ca_hold[1], ctc, freeze_bn)
        log.info("step %d loss %.4f lr %.2e synth %d | us-val %s | crops-ar %s | ca-holdout %s | %.1f s/epoch",
                 step, run_loss / args.epoch_steps, lr_at(step, args.steps, args.lr), len(mixer.synth_x),
                 json.dumps(ev_us), json.dumps(ev_ar), json.dumps(ev_ca), time.time() - t0)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best, "arch": args.arch,
                 "freeze_bn": freeze_bn, "eval": {"us_val": ev_us, "crops_ar": ev_ar, "ca_holdout": ev_ca}}
        score = (ev_us["exact"] + ev_ca["exact"]) / 2  # real US crops alone, and behind the detector
        if score > best:
            best = state["best"] = score
            torch.save(state, args.run / "best.tmp")
            os.replace(args.run / "best.tmp", args.run / "best.pt")
        torch.save(state, args.run / "last.tmp")
        os.replace(args.run / "last.tmp", last)
        if args.keep_every and step % args.keep_every == 0:
            torch.save(state, args.run / f"step_{step:05d}.pt")
    bar.close()


if __name__ == "__main__":
    main()
