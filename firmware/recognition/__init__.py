"""Plate recognition: find plates in a frame and read them, on one of several runtimes.

`Recognizer` is the whole API the pipeline and the CLI use. It loads the
detector and the OCR named by the model manifest onto the configured runtime
(ONNX Runtime by default, TensorRT on a Jetson), then for a frame: letterbox,
detect, NMS, cut a perspective-corrected crop per plate, read all crops of the
frame in one OCR batch, and return the plates with calibrated top-N candidates.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from firmware.config import RecognitionConfig
from firmware.records import PlateResult
from firmware.recognition import detect, glyphs, ocr
from firmware.recognition.manifest import ModelCorrupt, ModelMissing, ModelSpec
from firmware.recognition.manifest import load as load_manifest
from firmware.recognition.rectify import find_corners
from firmware.recognition.runtime import RuntimeUnavailable, create as create_runtime

__all__ = ["Recognizer", "RecognitionError", "ModelMissing", "ModelCorrupt", "RuntimeUnavailable"]

CROP_W, CROP_H = 256, 128  # rectified plate crop handed to the OCR (then resized to its input)
# a loose crop's plate, found by the detector inside it, is read instead of the whole image when it reads more
# surely and covers this share of the image (month and year stickers cover 2-3 %): docs/recognition.md
LOOSE_CROP_AREA = 0.12
# an image whose characters are TIGHT_CROP_TEXT of its height or more (glyphs.text_height) is cut around the
# characters alone: when it reads unsure it is also read with TIGHT_CROP_PAD of plate colour around it (width,
# height fractions) and the surer read kept (docs/recognition.md)
TIGHT_CROP_TEXT = 0.65
TIGHT_CROP_PAD = (0.08, 0.25)
# the second look's outer view of a frame's plate: cut with this much more margin than crop_margin
# (plate_crop: of the box's width each side, twice that of its height above and below)
WIDE_LOOK_MARGIN = 0.04
# the roll look (stills): reads under ROLL_LOOK_BELOW are read again turned back (ocr.unrolled_views); a turned
# read replaces the read when it is surer by ROLL_LOOK_GAIN and at least ROLL_LOOK_READ (a level plate's unsure
# read turned 10 degrees can read confidently wrong: docs/recognition.md)
ROLL_LOOK_BELOW = 0.8
ROLL_LOOK_GAIN = 0.35
ROLL_LOOK_READ = 0.85


class RecognitionError(ValueError):
    """A frame or crop that cannot be recognised (wrong type, empty, corrupt)."""


def default_models_dir() -> Path:
    """The release's models: POLEWATCH_MODELS_DIR (set by the OTA launcher for its slot), else the package's."""
    env = os.environ.get("POLEWATCH_MODELS_DIR")
    if env:
        return Path(env)
    from models import MODELS_DIR

    return MODELS_DIR


def check_image(img: object) -> np.ndarray:
    """Refuse anything that is not a non-empty 8-bit grey or colour image."""
    if not isinstance(img, np.ndarray):
        raise RecognitionError(f"image must be a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise RecognitionError(f"image must be 8-bit, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        raise RecognitionError(f"image must be HxW grey or HxWx3 BGR, got shape {img.shape}")
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise RecognitionError(f"image is too small: {img.shape[1]}x{img.shape[0]}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return img


def plate_crop(frame: np.ndarray, det: detect.Detection, margin: float = -0.03, rectify: bool = False) -> np.ndarray:
    """A crop of one detected plate (rectified when corners are known).

    The detector's boxes run a little loose around the plate; trimming them
    (margin -0.03, i.e. 3 % of the width off each side, 6 % of the height off
    top and bottom) read 0.81 instead of 0.59 exact on scenes-ca and 0.83
    instead of 0.64 on scenes-br compared with a +0.06 margin.
    """
    if det.corners is None and rectify:
        x, y, w, h = det.box
        x0, y0 = int(max(0, x - 0.15 * w)), int(max(0, y - 0.3 * h))
        y1, x1 = int(min(frame.shape[0], y + 1.3 * h)), int(min(frame.shape[1], x + 1.15 * w))
        region = frame[y0:y1, x0:x1]
        corners = find_corners(region)
        if corners is not None:
            det = detect.Detection(det.box, det.score, corners + np.float32([x0, y0]))
    if det.corners is not None:
        src = np.asarray(det.corners, np.float32)
        c = src.mean(0)
        src = c + (src - c) * (1 + 2 * margin)
        dst = np.float32([[0, 0], [CROP_W, 0], [CROP_W, CROP_H], [0, CROP_H]])
        M = cv2.getPerspectiveTransform(src, dst)
        return cv2.warpPerspective(frame, M, (CROP_W, CROP_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x, y, w, h = det.box
    mx, my = w * margin, h * margin * 2
    x0, y0 = int(max(0, x - mx)), int(max(0, y - my))
    x1, y1 = int(min(frame.shape[1], x + w + mx)), int(min(frame.shape[0], y + h + my))
    crop = frame[y0:y1, x0:x1]
    if crop.size == 0:
        crop = frame[max(0, y): y + max(1, h), max(0, x): x + max(1, w)]
    return crop


def detector_threshold(cfg: RecognitionConfig, spec: ModelSpec) -> float:
    """The score from which a detection is a plate: the configured one, else the manifest's."""
    return cfg.detector_threshold or float(spec.extra.get("threshold", 0.35))


def read_floor(cfg: RecognitionConfig, spec: ModelSpec) -> float:
    """The read confidence under which a detection is not a plate: the configured one, else the OCR
    manifest's (it depends on the model's calibration), else 0."""
    if cfg.min_read_confidence is not None:
        return cfg.min_read_confidence
    return float(spec.extra.get("min_read_confidence", 0.0))


class Recognizer:
    """Detector + OCR on one runtime. Thread-compatible, not thread-safe: one per pipeline."""

    def __init__(self, cfg: RecognitionConfig, models: dict[str, ModelSpec], stills: bool = False) -> None:
        self.cfg = cfg
        self.models = models
        # close-up pass (detect.find): still photos can hold a plate of any size, a pole camera's frames cannot
        self.close_ups = cfg.close_ups if cfg.close_ups is not None else stills
        self.roll_look = cfg.roll_look if cfg.roll_look is not None else stills  # a pole is mounted level
        # camera frames: O and 0 glyphs are measured for the tracker to pool over a vehicle's frames
        self.round_widths = cfg.glyph_check and not stills
        missing = {"detector", "ocr"} - models.keys()
        if missing:
            raise ModelMissing(f"manifest lacks model(s): {', '.join(sorted(missing))}")
        self.runtime = create_runtime(cfg)
        self.detector = self.runtime.load(models["detector"])
        self.ocr = self.runtime.load(models["ocr"])
        shape = list(models["ocr"].input[2:])
        if shape != [ocr.OCR_H, ocr.OCR_W]:
            raise ModelCorrupt(f"OCR model {models['ocr'].path.name} reads {shape[0]}x{shape[1]} crops "
                               f"(manifest input {models['ocr'].input}); this firmware makes {ocr.OCR_H}x{ocr.OCR_W}: "
                               "install the OCR model released with this firmware")
        self.temperature = float(models["ocr"].extra.get("temperature", 1.0))
        decoder = models["ocr"].extra.get("decoder", "slots")
        if decoder not in ocr.DECODERS:
            raise ModelCorrupt(f"manifest names an unknown OCR decoder {decoder!r}")
        self.decode = ocr.DECODERS[decoder]
        self.threshold = detector_threshold(cfg, models["detector"])
        self.min_read = read_floor(cfg, models["ocr"])
        self.last_timings: dict[str, float] = {}

    @classmethod
    def from_config(cls, cfg: RecognitionConfig, stills: bool = False) -> "Recognizer":
        """`stills`: the images are photos of any framing (recognize, eval), not the camera's frames."""
        models_dir = Path(cfg.models_dir) if cfg.models_dir else default_models_dir()
        return cls(cfg, load_manifest(models_dir), stills)

    @property
    def versions(self) -> dict[str, str]:
        return {name: spec.version for name, spec in self.models.items()} | {"runtime": self.runtime.name}

    @property
    def floor(self) -> float:
        """The lowest detector score that is looked at: the verification band's, if any."""
        band = self.cfg.verify_threshold
        return min(band, self.threshold) if band is not None else self.threshold

    def detect(self, frame: np.ndarray, threshold: float | None = None,
               close_ups: bool | None = None) -> list[detect.Detection]:
        close_ups = self.close_ups if close_ups is None else close_ups
        return detect.find(self.detector, frame, self.threshold if threshold is None else threshold,
                           self.cfg.nms_iou, self.cfg.max_plates, close_ups, self.roll_look, refined=close_ups,
                           sure=self.threshold)

    def _verified(self, r: PlateResult) -> bool:
        """A detection from the low band counts only when its crop reads like a plate.

        Weak detections are where small, far or non-US-shaped plates hide, but
        also signs and grilles; a confident read of several characters tells
        them apart (scenes-eu recall 0.88 -> 0.93, scenes-br 0.965 -> 0.98 with
        false detections still under 0.1 per image; see docs/recognition.md). A read in a
        common US serial format is plate-like enough to be kept at a lower confidence, and so is
        a serial-length read with a digit whose every character was seen surely (scenes-eu
        detected 0.954 -> 0.972 and two more of the 21 scenes-us-speed plates, with
        benchmarks/verify_sweep.py)."""
        if r.detection_score >= self.threshold:
            return True
        if len(r.plate) < self.cfg.verify_min_chars:
            return False
        if r.confidence >= self.cfg.verify_min_confidence:
            return True
        cc = self.cfg.verify_char_confidence
        if (cc is not None and 5 <= len(r.plate) <= ocr.SLOTS and r.char_confidence >= cc
                and any(ch.isdigit() for ch in r.plate)):
            return True
        fmt = self.cfg.verify_format_confidence
        return (fmt is not None and self.cfg.us_format_rules and r.confidence >= fmt and len(r.plate) >= 5
                and ocr.in_us_format(r.plate))

    def read_crops(self, crops: list[np.ndarray], boxes: list[tuple[int, int, int, int]] | None = None,
                   scores: list[float] | None = None) -> list[PlateResult]:
        """Read plate crops in one OCR batch (in the order given, not sorted)."""
        return self._read([check_image(c) for c in crops], boxes, scores)

    def read_plate_images(self, images: list[np.ndarray]) -> list[PlateResult]:
        """Images said to show one plate each, framed by someone else (`recognize --crop`, the
        crop sets of `eval`): read whole, in one OCR batch, and where that read is unsure
        (`recognition.crop_search_below`) the image is also searched like a photo, close-up pass
        included: a loose crop, with bumper or car around its plate, reads far better from the
        plate found inside it. A plate found there replaces the whole read when it reads more
        surely and covers `LOOSE_CROP_AREA` of the image or more (not a sticker); the box stays
        the whole image, as the command line's contract says. An unsure image cut around the
        characters alone (`TIGHT_CROP_TEXT`) is first read again with plate colour around it
        (`ocr.framed_out`), the surer read kept."""
        images = [check_image(c) for c in images]
        results = self._read(images, None, None)
        gate = self.cfg.crop_search_below
        tight = [k for k, r in enumerate(results) if gate is not None and r.confidence < gate
                 and glyphs.text_height(images[k]) >= TIGHT_CROP_TEXT]
        framed = self._read([ocr.framed_out(images[k], *TIGHT_CROP_PAD) for k in tight], None, None) if tight else []
        for k, r in zip(tight, framed):
            if r.confidence > results[k].confidence:
                results[k] = dataclasses.replace(r, box=results[k].box)
        for k, r in enumerate(results):
            if gate is None or r.confidence >= gate:
                continue
            h, w = images[k].shape[:2]
            found = [f for f in self.choose(self.candidates(images[k], close_ups=True))
                     if f.box[2] * f.box[3] >= LOOSE_CROP_AREA * w * h]
            if found and found[0].confidence > r.confidence:
                results[k] = dataclasses.replace(found[0], box=r.box, detection_score=r.detection_score)
        return results

    def _read(self, crops: list[np.ndarray], boxes: list[tuple[int, int, int, int]] | None,
              scores: list[float] | None, wide: Callable[[int], np.ndarray] | None = None) -> list[PlateResult]:
        """`wide(k)`: crop k cut again from its frame with WIDE_LOOK_MARGIN more, for the second look."""
        probs = self._probs(crops)
        readings = [self.decode(p, self.cfg.top_n, us_format_rules=self.cfg.us_format_rules) for p in probs]
        if self.cfg.second_look_below is not None:
            self._second_look(crops, probs, readings, self.cfg.second_look_below, wide)
        measured = [glyphs.Glyphs(c, p) for c, p in zip(crops, probs)]  # measured only when a check asks
        if self.cfg.glyph_check:
            readings = [glyphs.prefer_wide_o(c, p, r, self.cfg.us_format_rules, g)
                        for c, p, r, g in zip(crops, probs, readings, measured)]
        if self.roll_look:
            self._roll_look(crops, probs, readings)
        results: list[PlateResult] = []
        for k, r in enumerate(readings):
            box = boxes[k] if boxes else (0, 0, crops[k].shape[1], crops[k].shape[0])
            score = scores[k] if scores else 1.0
            # only where an O is in question: the tracker settles an O read on a narrow glyph (tracking.py)
            asked = self.round_widths and any("O" in c.plate for c in r.candidates[:3])
            rounds = glyphs.round_widths(crops[k], probs[k], r.plate, measured[k]) if asked else {}
            results.append(PlateResult(box, float(score), r.plate, r.confidence, r.candidates,
                                       ocr.char_confidence(probs[k]), rounds))
        return results

    def _probs(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Per-crop character probabilities (after the temperature), in OCR batches of MAX_BATCH."""
        probs: list[np.ndarray] = []
        for start in range(0, len(crops), ocr.MAX_BATCH):
            logits = self.ocr.run(ocr.preprocess(crops[start: start + ocr.MAX_BATCH]))[0]
            probs.extend(ocr.softmax(logits, self.temperature))
        return probs

    def _views_probs(self, again: list[int], views_of) -> list[list[np.ndarray]]:
        """The probabilities of `views_of(k)` (a crop's views) for each crop index in `again`, all
        read in one OCR batch."""
        views = [views_of(k) for k in again]
        flat = self._probs([v for vs in views for v in vs]) if any(views) else []
        out, j = [], 0
        for vs in views:
            out.append(flat[j: j + len(vs)])
            j += len(vs)
        return out

    def _second_look(self, crops: list[np.ndarray], probs: list[np.ndarray], readings: list[ocr.Reading],
                     gate: float, wide: Callable[[int], np.ndarray] | None = None) -> None:
        """Re-read the unsure plates framed two more ways and pool the three readings (in place).

        Only plates that read as something get a second look: pooling views
        of a crop that reads as nothing would turn grilles into phantom reads.
        With `wide` (a frame's plates), the outer view is the plate cut again from the frame
        with more around it rather than the crop's edge replicated, so a character the
        detector's box cut off is read whole (docs/recognition.md).
        """
        again = [k for k, r in enumerate(readings) if r.plate and r.confidence < gate]
        looked = self._views_probs(again, lambda k: ocr.second_views(crops[k], wide(k) if wide else None))
        for k, views in zip(again, looked):
            readings[k] = ocr.fuse([probs[k], *views], self.decode, self.cfg.top_n, self.cfg.us_format_rules)

    def _roll_look(self, crops: list[np.ndarray], probs: list[np.ndarray], readings: list[ocr.Reading]) -> None:
        """Read the unsure plates again turned back either way (in place): a plate rolled in a
        photo reads far better level. Only a much surer turned read replaces the read, so a level
        plate keeps its own (rolled 15 degrees: 45 -> 49 and 48 -> 49 of 80, level 76 of 80 either way)."""
        again = [k for k, r in enumerate(readings) if r.confidence < ROLL_LOOK_BELOW]
        for k, views in zip(again, self._views_probs(again, lambda k: ocr.unrolled_views(crops[k]))):
            turned = [(self.decode(p, self.cfg.top_n, us_format_rules=self.cfg.us_format_rules), p) for p in views]
            best, p = max(turned, key=lambda rp: rp[0].confidence, default=(None, None))
            if best and best.plate and best.confidence >= max(ROLL_LOOK_READ, readings[k].confidence + ROLL_LOOK_GAIN):
                readings[k], probs[k] = best, p

    def candidates(self, frame: np.ndarray, floor: float | None = None,
                   close_ups: bool | None = None) -> list[PlateResult]:
        """Every detection from `floor` (default: the verification band's) read, before any is
        kept or dropped: what `read_frame` chooses from (and `benchmarks/verify_sweep.py` measures)."""
        frame = check_image(frame)
        t0 = time.perf_counter()
        dets = self.detect(frame, self.floor if floor is None else floor, close_ups)
        t1 = time.perf_counter()
        crops = [plate_crop(frame, d, self.cfg.crop_margin, self.cfg.rectify) for d in dets]
        keep = [i for i, c in enumerate(crops) if c.shape[0] >= 4 and c.shape[1] >= 8]  # slivers at the frame edge
        # the second look's outer view comes from the frame (a box cut inside the plate loses its edge
        # characters), cut only for the reads that get a second look
        margin = self.cfg.crop_margin + WIDE_LOOK_MARGIN
        results = self._read([crops[i] for i in keep], [dets[i].box for i in keep], [dets[i].score for i in keep],
                             lambda k: plate_crop(frame, dets[keep[k]], margin, self.cfg.rectify))
        t2 = time.perf_counter()
        self.last_timings = {"detect_ms": (t1 - t0) * 1e3, "ocr_ms": (t2 - t1) * 1e3}
        return results

    def settle_fused(self, image: np.ndarray, box: tuple[int, int, int, int], voted: list[str]) -> str | None:
        """The text the glyphs of the plate at `box` of `image` say among `voted` (the leader first), or
        None (`glyphs.fused_choice`), the plate cut as `candidates` cuts one: what the tracker asks of a
        vehicle's fused plate (recognition.fusion) to settle O against 0 and count a doubled I."""
        g = self.fused_glyphs(image, box)
        return glyphs.fused_choice(g, voted) if g is not None else None

    def fused_glyphs(self, image: np.ndarray, box: tuple[int, int, int, int]) -> glyphs.Glyphs | None:
        """The plate at `box` of `image` cut as `candidates` cuts one, with the OCR's probabilities on it
        (None where the cut is too small to read): what `settle_fused` measures."""
        image = check_image(image)
        crop = plate_crop(image, detect.Detection(tuple(int(v) for v in box), 1.0), self.cfg.crop_margin)
        if crop.shape[0] < 4 or crop.shape[1] < 8:
            return None
        return glyphs.Glyphs(crop, self._probs([crop])[0])

    def keeps(self, r: PlateResult) -> bool:
        """Whether a read candidate is a plate: it reads as something, at `min_read_confidence`,
        from the band's floor up, passes the verification band, and (with the US format rules) is
        not a state's name, the legend printed on the plate rather than its registration."""
        return (bool(r.plate) and r.confidence >= self.min_read and r.detection_score >= self.floor
                and not (self.cfg.us_format_rules and ocr.is_state_name(r.plate)) and self._verified(r))

    def read_frame(self, frame: np.ndarray) -> list[PlateResult]:
        """All plates in a frame, read, best first."""
        return self.choose(self.candidates(frame))

    def choose(self, candidates: list[PlateResult]) -> list[PlateResult]:
        """The plates among one frame's read candidates: those `keeps` accepts, one read of
        each (`detect.one_per_plate`: the close-up pass and the full pass can both find a plate,
        a box cut inside the plate reads it short, and a sticker inside a plate is not a plate), best first."""
        kept = [r for r in candidates if self.keeps(r)]
        kept = [kept[i] for i in detect.one_per_plate([r.box for r in kept], [r.confidence for r in kept],
                                                       self.cfg.nms_iou, [r.plate for r in kept])]
        kept.sort(key=lambda r: -r.confidence)
        return kept
