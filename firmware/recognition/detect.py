"""Plate detector pre- and post-processing, pure numpy/OpenCV.

The detector (models/plate_detector.onnx) is an anchor-free CenterNet-style net on a grey,
letterboxed frame. Keeping the letterbox and the decode here, outside any runtime, lets the
ONNX Runtime and TensorRT paths share them and lets the training code validate with the
very same decode the appliance runs.

Model contract (see docs/detector.md):
- input ``image``: float32 [N, 1, 384, 640], grey in [0, 1], frame scaled to fit and
  placed at the top-left, the rest filled with ``PAD_VALUE / 255``;
- output ``heatmap``: float32 [N, 1, 96, 160], plate-centre probability per stride-4 cell
  (sigmoid already applied);
- output ``box``: float32 [N, 4, 96, 160]: ``dx, dy, log_w, log_h`` where, for the cell at
  column ``i``, row ``j``: centre = ((i + dx) * 4, (j + dy) * 4) and size =
  (exp(log_w) * 4, exp(log_h) * 4), in letterboxed input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DETECTOR_INPUT: tuple[int, int] = (384, 640)  # (H, W) of the model input
STRIDE = 4  # input pixels per output cell
PAD_VALUE = 114  # grey level of the letterbox border
_LOG_SIZE_RANGE = (-3.0, 7.0)  # clamp for the log-size outputs before exp()
_KERNEL3 = np.ones((3, 3), np.uint8)
_MIN_BOX_PX = 2.0  # boxes smaller than this in frame pixels are noise


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was mapped into the model input: input = frame * scale + (pad_x, pad_y)."""

    scale: float
    pad_x: int
    pad_y: int
    frame_width: int
    frame_height: int

    def to_frame(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map Nx4 (x1, y1, x2, y2) boxes from input pixels to frame pixels, clipped to the frame."""
        b = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.pad_x) / self.scale
        b[:, [1, 3]] = (b[:, [1, 3]] - self.pad_y) / self.scale
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, self.frame_width)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, self.frame_height)
        return b

    def to_input(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map Nx4 boxes from frame pixels to input pixels (used by training and tests)."""
        b = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = b[:, [0, 2]] * self.scale + self.pad_x
        b[:, [1, 3]] = b[:, [1, 3]] * self.scale + self.pad_y
        return b


@dataclass(slots=True)
class Detection:
    """One plate found in a frame: box (x, y, w, h) in frame pixels, score in [0, 1]."""

    box: tuple[int, int, int, int]
    score: float
    corners: np.ndarray | None = None  # 4x2 frame pixels, clockwise from top-left; not predicted yet


def to_grey(frame: np.ndarray) -> np.ndarray:
    """Return an HxW uint8 grey image from an HxW, HxWx1, HxWx3 (BGR) or HxWx4 (BGRA) frame."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        grey = frame
    elif frame.ndim == 3 and frame.shape[2] == 3:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    else:
        raise ValueError(f"frame must be HxW grey or HxWx3 BGR, got shape {frame.shape}")
    if grey.shape[0] < 8 or grey.shape[1] < 8:
        raise ValueError(f"frame too small for plate detection: {grey.shape[1]}x{grey.shape[0]}")
    return np.ascontiguousarray(grey)


def letterbox(grey: np.ndarray, size: tuple[int, int] = DETECTOR_INPUT,
              shrink: float = 1.0) -> tuple[np.ndarray, Letterbox]:
    """Scale a grey frame to fit ``size`` (H, W) keeping its aspect, pad the rest; uint8 out.
    ``shrink`` < 1 fills only that share of the fit (the zoomed-out pass for close-ups)."""
    in_h, in_w = size
    h, w = grey.shape[:2]
    scale = min(in_h / h, in_w / w) * shrink
    new_w = max(1, min(in_w, int(round(w * scale))))
    new_h = max(1, min(in_h, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(grey, (new_w, new_h), interpolation=interp)
    canvas = np.full((in_h, in_w), PAD_VALUE, dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, Letterbox(scale=float(scale), pad_x=0, pad_y=0, frame_width=w, frame_height=h)


def preprocess(frame: np.ndarray, shrink: float = 1.0) -> tuple[np.ndarray, Letterbox]:
    """Frame (BGR or grey uint8) -> (float32 [1, 1, H, W] tensor in [0, 1], Letterbox)."""
    canvas, lb = letterbox(to_grey(frame), shrink=shrink)
    tensor = (canvas.astype(np.float32) * (1.0 / 255.0))[None, None]
    return tensor, lb


def _peaks(heat: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows, cols of 3x3 local maxima at or above threshold (the CenterNet 'NMS' on the map)."""
    neighbourhood = cv2.dilate(np.ascontiguousarray(heat, np.float32), _KERNEL3)  # 3x3 max; the border counts as -inf
    return np.nonzero((heat >= neighbourhood) & (heat >= threshold))


def decode(heat: np.ndarray, reg: np.ndarray, threshold: float, top_k: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap [H, W] and regression [4, H, W] -> (Nx4 xyxy boxes in input pixels, N scores)."""
    rows, cols = _peaks(heat, threshold)
    scores = heat[rows, cols]
    order = np.argsort(-scores, kind="stable")[:top_k]
    rows, cols, scores = rows[order], cols[order], scores[order]
    dx, dy = reg[0, rows, cols], reg[1, rows, cols]
    lw = np.clip(reg[2, rows, cols], *_LOG_SIZE_RANGE)
    lh = np.clip(reg[3, rows, cols], *_LOG_SIZE_RANGE)
    cx, cy = (cols + dx) * STRIDE, (rows + dy) * STRIDE
    bw, bh = np.exp(lw) * STRIDE, np.exp(lh) * STRIDE
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
    return boxes.reshape(-1, 4), scores.astype(np.float32)


def _overlaps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas of Nx4 and Mx4 xyxy boxes, and the boxes' own areas."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of Nx4 and Mx4 xyxy boxes."""
    inter, area_a, area_b = _overlaps(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = iou_matrix(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    outputs: list[np.ndarray],
    lb: Letterbox,
    threshold: float = 0.35,
    nms_iou: float = 0.45,
    max_plates: int = 16,
) -> list[Detection]:
    """Model outputs [heatmap, box] for one frame -> detections in frame pixels, best first."""
    if len(outputs) != 2:
        raise ValueError(f"detector must give 2 outputs (heatmap, box), got {len(outputs)}")
    heat = np.asarray(outputs[0], dtype=np.float32)
    reg = np.asarray(outputs[1], dtype=np.float32)
    heat = heat.reshape(heat.shape[-2:]) if heat.ndim >= 2 else heat
    if reg.ndim == 4:
        reg = reg[0]
    if reg.shape[0] != 4 or reg.shape[1:] != heat.shape:
        raise ValueError(f"detector outputs disagree: heatmap {heat.shape}, box {reg.shape}")
    boxes, scores = decode(heat, reg, threshold, top_k=max(4 * max_plates, 32))
    if not len(scores):
        return []
    boxes = lb.to_frame(boxes)
    ok = ((boxes[:, 2] - boxes[:, 0]) >= _MIN_BOX_PX) & ((boxes[:, 3] - boxes[:, 1]) >= _MIN_BOX_PX)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, nms_iou)[:max_plates]
    result: list[Detection] = []
    for i in keep:
        x1, y1, x2, y2 = boxes[i]
        x, y = int(round(float(x1))), int(round(float(y1)))
        w, h = max(1, int(round(float(x2))) - x), max(1, int(round(float(y2))) - y)
        result.append(Detection(box=(x, y, w, h), score=float(scores[i])))
    return result


ZOOM_OUT = 0.5  # the close-up pass: the frame at half its fit in the detector input
CLOSE_UP_INPUT_PX = 160.0  # plates at least this wide in the full-fit input come from the close-up pass
# the plate-filling pass: the frame at 0.3 of its fit, for a still that is all plate (a plate photographed
# close, a crop given without --crop: us-crops-dev's validation half read as photos, found 56 and read 1 of 195
# with the close-up pass alone, found 188 and read 184 with this one too); plates it finds FILL_INPUT_PX wide or more at
# full fit are added (at 0.3 that is 80 of its input pixels: smaller ones are the other passes' to find)
FILL_OUT = 0.3
FILL_INPUT_PX = 80.0 / FILL_OUT


# stills: a plate narrower than REFINE_INPUT_PX in the full-fit input (a small plate in a large photo), but at
# least REFINE_MIN_PX wide in the photo (narrower ones are too small to read whatever their box), is looked for
# again in a window REFINE_WINDOW plate widths wide around it, when that window reaches the input at least
# REFINE_GAIN times larger; the box found there replaces its box (docs/recognition.md: small plates in photos)
REFINE_INPUT_PX = 40.0
REFINE_MIN_PX = 50.0
REFINE_WINDOW = 4.0
REFINE_GAIN = 1.5


def refine(model, frame: np.ndarray, found: list[Detection], threshold: float, nms_iou: float = 0.45) -> list[Detection]:
    """The detections with the box of each small one found again at a larger scale.

    The detector places a box to its output stride (4 input pixels): a plate 30 input pixels
    wide, as a 200 px plate is in a 4032 px photo, gets a box off by a few per cent of its width,
    and the crop cut from it loses or clips characters. One more detector pass over a window
    around the plate puts it at a size the detector places well. The score stays the first
    pass's (the band that verifies weak detections was measured on it); a window that finds
    nothing overlapping the box (IoU 0.3) leaves the detection as it was.
    """
    H, W = frame.shape[:2]
    in_h, in_w = DETECTOR_INPUT
    full = min(in_w / W, in_h / H)
    out: list[Detection] = []
    for d in found:
        x, y, w, h = d.box
        ww = max(w * REFINE_WINDOW, 64.0)
        wh = ww * in_h / in_w
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - ww / 2)), int(max(0, cy - wh / 2))
        x1, y1 = int(min(W, cx + ww / 2)), int(min(H, cy + wh / 2))
        small = REFINE_MIN_PX <= w and w * full < REFINE_INPUT_PX and d.corners is None
        if not small or x1 - x0 < 8 or y1 - y0 < 8 or min(in_w / (x1 - x0), in_h / (y1 - y0)) < REFINE_GAIN * full:
            out.append(d)
            continue
        tensor, lb = preprocess(frame[y0:y1, x0:x1])
        again = postprocess(model.run(tensor), lb, threshold, nms_iou, 4)
        boxes = np.float32([[a.box[0] + x0, a.box[1] + y0, a.box[0] + x0 + a.box[2], a.box[1] + y0 + a.box[3]]
                            for a in again]).reshape(-1, 4)
        iou = iou_matrix(boxes, np.float32([[x, y, x + w, y + h]]))[:, 0] if len(again) else np.zeros(0)
        if not len(iou) or iou.max() < 0.3:
            out.append(d)
            continue
        bx0, by0, bx1, by1 = boxes[int(iou.argmax())]
        out.append(Detection((int(bx0), int(by0), int(bx1 - bx0), int(by1 - by0)), d.score))
    return out


ROLL_PASS_DEGREES = (15.0, -15.0)  # the roll passes: the frame turned so that a plate rolled this far lies level
# a plate found upright under the detector threshold is searched turned too where a turned pass finds it at the
# threshold and this much higher (a level plate can score a little higher turned: docs/recognition.md)
ROLL_PASS_GAIN = 0.1


def _turned(frame: np.ndarray, deg: float, border: int = PAD_VALUE) -> tuple[np.ndarray, np.ndarray]:
    """The frame turned by `deg` (counter-clockwise) on a canvas of grey `border` that holds all of
    it, and the 2x3 affine map from the turned image back to the frame."""
    h, w = frame.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    c, s = abs(M[0, 0]), abs(M[0, 1])
    W, H = int(round(w * c + h * s)), int(round(w * s + h * c))
    M[0, 2] += W / 2 - w / 2
    M[1, 2] += H / 2 - h / 2
    turned = cv2.warpAffine(frame, M, (W, H), flags=cv2.INTER_LINEAR, borderValue=(border,) * 3)
    return turned, cv2.invertAffineTransform(M)


def roll_passes(model, frame: np.ndarray, threshold: float, found: list[Detection], nms_iou: float = 0.45,
                max_plates: int = 16, sure: float = 0.0) -> list[Detection]:
    """Plates the upright pass missed because they are rolled: the detector's boxes are
    axis-aligned and it learnt plates rolled a few degrees, so a plate rolled 15 degrees in a
    photo is often not found (58 of 80 against 80 level: docs/recognition.md). The frame is
    turned by each of ROLL_PASS_DEGREES and searched again; a plate found there comes back with
    its four corners in the frame (so its crop is cut level) and its enclosing box, and only where
    no detection of `found` is (a level plate found turned would come back as a slanted crop), unless
    that one scored under `sure` and the turned pass scores the plate `sure` or more and ROLL_PASS_GAIN
    over it: a plate rolled 8 degrees scores low upright and its axis-aligned crop reads unsure, while
    turned it is found surely. Both reads then go on, and the surer is kept (`one_per_plate`)."""
    taken = np.asarray([(d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]) for d in found],
                       np.float32).reshape(-1, 4)
    upright = np.asarray([d.score for d in found], np.float32)
    grey = to_grey(frame)
    H, W = grey.shape
    in_h, in_w = DETECTOR_INPUT
    out: list[Detection] = []
    for deg in ROLL_PASS_DEGREES:
        # turn the frame already shrunk to the turned canvas's fit: a full-size turn costs more than the pass
        c, s = abs(np.cos(np.radians(deg))), abs(np.sin(np.radians(deg)))
        f = min(in_w / (W * c + H * s), in_h / (W * s + H * c))
        small = cv2.resize(grey, (max(8, int(round(W * f))), max(8, int(round(H * f)))),
                           interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        fx, fy = small.shape[1] / W, small.shape[0] / H
        turned, back = _turned(small, deg)
        tensor, lb = preprocess(turned)
        for d in postprocess(model.run(tensor), lb, threshold, nms_iou, max_plates):
            x, y, w, h = d.box
            quad = np.float32([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
            corners = (quad @ back[:, :2].T + back[:, 2]) / np.float32([fx, fy])
            x0, y0 = np.clip(corners.min(0), 0, [W - 1, H - 1])
            x1, y1 = np.clip(corners.max(0), 0, [W, H])
            if x1 - x0 < _MIN_BOX_PX or y1 - y0 < _MIN_BOX_PX:
                continue
            cx, cy = corners.mean(0)
            inside = (taken[:, 0] <= cx) & (cx <= taken[:, 2]) & (taken[:, 1] <= cy) & (cy <= taken[:, 3])
            beaten = (upright < sure) & (d.score >= sure) & (d.score >= upright + ROLL_PASS_GAIN)  # weak upright boxes
            if (inside & ~beaten).any():
                continue
            out.append(Detection((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), d.score, corners.astype(np.float32)))
    return out


def find(model, frame: np.ndarray, threshold: float, nms_iou: float = 0.45, max_plates: int = 16,
         close_ups: bool = False, rolls: bool = False, refined: bool = False, sure: float = 0.0) -> list[Detection]:
    """The plates a detector model (anything with the runtimes' `run(tensor) -> outputs`) finds in a frame.

    With `close_ups`, a second pass looks at the frame shrunk to half its fit: the detector
    learnt plates up to about a quarter of its input wide, and one filling half a still (a
    close-up photo) is found in pieces or not at all (docs/recognition.md). Only the plates that
    pass finds large (`CLOSE_UP_INPUT_PX` or more at full fit) are added; a third at FILL_OUT of
    the fit adds the plates filling the still (FILL_INPUT_PX or more); every pass's boxes of
    one plate are read, and `one_per_plate` keeps one read of it. With `rolls`, the frame turned
    either way is searched for rolled plates the other passes missed or found only below `sure`
    (`roll_passes`, two more detector passes: about 22 ms a photo here). With `refined`, each plate
    small in the detector's input is found again in a window around it for a sharper box (`refine`).
    """
    tensor, lb = preprocess(frame)
    dets = postprocess(model.run(tensor), lb, threshold, nms_iou, max_plates)
    if not (close_ups or rolls or refined):  # a camera frame: one pass, already best first
        return dets
    if close_ups:
        for shrink, input_px in ((ZOOM_OUT, CLOSE_UP_INPUT_PX), (FILL_OUT, FILL_INPUT_PX)):
            tensor, zlb = preprocess(frame, shrink)
            min_w = input_px / lb.scale  # frame pixels
            dets += [d for d in postprocess(model.run(tensor), zlb, threshold, nms_iou, max_plates)
                     if d.box[2] >= min_w]
    if rolls:
        dets += roll_passes(model, frame, threshold, dets, nms_iou, max_plates, sure)
    dets = sorted(dets, key=lambda d: -d.score)[:max_plates]
    return refine(model, frame, dets, threshold, nms_iou) if refined else dets


# of twin boxes whose reads differ by characters at one end, the longer read is kept when at least this
# share as sure as the shorter and its box reaches further on that side: a box cut inside the plate loses
# the plate's edge characters and reads the rest as surely (close-up photos: DYH842 at 0.9986 beside the
# whole plate's YDYH842 at 0.9977); on the real scene sets no such pair was kept (docs/recognition.md)
EXTEND_SURE = 0.9


def _extends(texts: list[str], xyxy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """[i, j]: j's text is i's with characters added at one end, j's box reaches further than i's on
    that side, and j's read is at least EXTEND_SURE as sure as i's."""
    n = len(texts)
    out = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            a, b = texts[i], texts[j]
            if not a or len(b) <= len(a) or conf[j] < EXTEND_SURE * conf[i]:
                continue
            out[i, j] = ((b.endswith(a) and xyxy[j, 0] < xyxy[i, 0])
                         or (b.startswith(a) and xyxy[j, 2] > xyxy[i, 2]))
    return out


def to_xyxy(boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Nx4 float32 (x0, y0, x1, y1) from (x, y, w, h) boxes."""
    return np.asarray([(x, y, x + w, y + h) for x, y, w, h in boxes], np.float32).reshape(-1, 4)


def centred_in(dets: list[Detection], box: tuple[float, float, float, float]) -> Detection | None:
    """The surest detection whose centre lies in `box` (x, y, w, h): the detector's own framing of a
    labelled plate, for cutting training crops the way the appliance cuts them."""
    x, y, w, h = box
    hit = [d for d in dets if x <= d.box[0] + d.box[2] / 2 <= x + w and y <= d.box[1] + d.box[3] / 2 <= y + h]
    return max(hit, key=lambda d: d.score) if hit else None


def one_per_plate(boxes: list[tuple[int, int, int, int]], confidences: list[float], iou: float = 0.45,
                  texts: list[str] | None = None) -> list[int]:
    """Indices of the reads to keep when boxes overlap: of two boxes of about one size
    (IoU >= `iou`) the surer read (the first of a tie) unless the other's text extends it by
    characters its box cut off (`texts` given, EXTEND_SURE), and of a box lying half or more
    inside a larger one the larger (a plate holds stickers, bolts and pieces of itself, never
    another plate)."""
    xyxy = to_xyxy(boxes)
    inter, area, _ = _overlaps(xyxy, xyxy)
    union = area[:, None] + area[None, :] - inter
    inside = inter / np.maximum(area, 1e-9)[:, None] >= 0.5  # [i, j]: half of i or more lies in j
    twin = inter >= iou * np.maximum(union, 1e-9)
    conf = np.asarray(confidences, np.float64)
    order = np.arange(len(conf))
    surer = (conf[None, :] > conf[:, None]) | ((conf[None, :] == conf[:, None]) & (order[None, :] < order[:, None]))
    if texts is not None:
        ext = _extends(texts, xyxy, conf)
        surer = ext | (surer & ~ext.T)
    larger = area[None, :] > area[:, None]
    loses = inside & np.where(twin, surer, larger)
    np.fill_diagonal(loses, False)
    return [int(i) for i in np.flatnonzero(~loses.any(axis=1))]
