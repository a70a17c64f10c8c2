"""Real plates with their characters reordered: new texts in real dies, dirt and blur.

The real US plates at hand are few (375 crops and 246 scenes), and a network can learn their
texts along with their glyphs. Cutting a real crop between its characters and putting the
pieces back in another order gives a plate that nobody registered, drawn in the same die, on
the same background, with the same blur and lighting: the glyphs stay real, the text does not
repeat. Cuts come from a CTC forced alignment of the crop's label by a trained OCR (where its
greedy read already equals the label, so the alignment can be trusted), moved to the quietest
column between two characters. Stacked pairs and crops whose characters
crowd are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware.recognition.ocr import CHARSET, OCR_W, PAD, softmax

STRIDE = 4  # input columns per CTC frame (128 px in, 32 frames out)
MIN_GAP_PX = 6.0  # characters closer than this (a stacked pair) are not cut apart


def viterbi(logp: np.ndarray, label: list[int]) -> list[list[int]] | None:
    """CTC forced alignment: for each label character, the frames the best path spends on it.
    `logp` is T x C log-probabilities; None when the label cannot fit in T frames."""
    T = logp.shape[0]
    ext = [PAD]
    for c in label:
        ext += [c, PAD]
    S = len(ext)
    if len(label) + sum(a == b for a, b in zip(label, label[1:])) > T:
        return None
    neg = -1e30
    score = np.full((T, S), neg)
    back = np.zeros((T, S), np.int64)
    score[0, 0] = logp[0, ext[0]]
    if S > 1:
        score[0, 1] = logp[0, ext[1]]
    for t in range(1, T):
        for s in range(S):
            best, arg = score[t - 1, s], s
            if s >= 1 and score[t - 1, s - 1] > best:
                best, arg = score[t - 1, s - 1], s - 1
            if s >= 2 and ext[s] != PAD and ext[s] != ext[s - 2] and score[t - 1, s - 2] > best:
                best, arg = score[t - 1, s - 2], s - 2
            score[t, s] = best + logp[t, ext[s]]
            back[t, s] = arg
    s = S - 1 if S == 1 or score[T - 1, S - 1] >= score[T - 1, S - 2] else S - 2
    if score[T - 1, s] <= neg / 2:
        return None
    frames: list[list[int]] = [[] for _ in label]
    for t in range(T - 1, -1, -1):
        if s % 2 == 1:
            frames[s // 2].append(t)
        s = back[t, s]
    return frames


def cuts(img: np.ndarray, frames: list[list[int]]) -> np.ndarray | None:
    """Column boundaries (len(label) + 1 of them) around each character of a grey OCR crop, or None
    when the characters crowd (a stacked pair, an alignment that lost one)."""
    if any(not f for f in frames):
        return None
    centres = np.array([(np.mean(f) + 0.5) * STRIDE for f in frames])
    gaps = np.diff(centres)
    if len(centres) < 2 or gaps.min() < max(MIN_GAP_PX, 0.5 * float(np.median(gaps))):
        return None
    h, w = img.shape
    band = img[int(h * 0.2): int(h * 0.82)].astype(np.float32)
    # a column between two characters shows only the plate: little varies down it
    busy = np.convolve(band.std(axis=0), np.ones(3) / 3, mode="same")
    pitch = float(np.median(gaps))
    # CTC fires somewhere on a character, not always at its middle: the gap between two characters
    # is the quietest column between their frames, and the outer edges lie within a pitch outside them
    spans = [(centres[0] - pitch, centres[0] - pitch / 4)]
    spans += [(a + 1, b - 1) for a, b in zip(centres[:-1], centres[1:])]
    spans.append((centres[-1] + pitch / 4, centres[-1] + pitch))
    out = []
    for a, b in spans:
        lo, hi = max(0, int(round(a))), min(w, int(round(b)) + 1)
        out.append(lo + int(np.argmin(busy[lo:hi])) if hi > lo else int(np.clip(round(a), 0, w)))
    out = np.array(out)
    return out if np.all(np.diff(out) >= 3) else None


def align(model: Path, images: np.ndarray, labels: np.ndarray) -> list[np.ndarray | None]:
    """Cuts for every crop of a pool (grey N x H x W uint8, slot labels), by the OCR in `model`;
    None for a crop it does not read as labelled or whose characters crowd."""
    from firmware.config import RecognitionConfig
    from firmware.recognition.manifest import ModelSpec
    from firmware.recognition.onnxrt import OnnxRuntime

    spec = ModelSpec("ocr", Path(model), "align", "", ["N", 1, *images.shape[1:]])
    sess = OnnxRuntime(RecognitionConfig()).load(spec)  # the firmware's session: its threads and options
    out: list[np.ndarray | None] = []
    for i in range(0, len(images), 64):
        logp = np.log(softmax(sess.run(images[i: i + 64][:, None] / np.float32(255.0))[0]) + 1e-30)
        for img, lab, lp in zip(images[i: i + 64], labels[i: i + 64], logp):
            label = [int(c) for c in lab if c != PAD]
            greedy, prev = [], None
            for c in lp.argmax(-1):
                if c != PAD and c != prev:
                    greedy.append(int(c))
                prev = c
            frames = viterbi(lp, label) if greedy == label else None
            out.append(cuts(img, frames) if frames else None)
    return out


def reshuffle(rng: np.random.Generator, img: np.ndarray, label: np.ndarray, bounds: np.ndarray,
              keep_format: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The crop with its characters drawn again in a random order, and the label to match.
    `keep_format`: letters trade places with letters and digits with digits, so the plate keeps its
    serial format (7ABC123 stays digit, three letters, three digits) and its width. Otherwise each of
    its own glyphs may be drawn anywhere and again (half the time a permutation), stretched back to
    the OCR's width."""
    chars = [int(c) for c in label if c != PAD]
    if keep_format:
        order = np.arange(len(chars))
        for digit in (True, False):
            at = np.array([k for k, c in enumerate(chars) if CHARSET[c].isdigit() == digit], np.int64)
            order[at] = rng.permutation(at)
    else:
        order = rng.integers(0, len(chars), len(chars))
        if rng.random() < 0.5:
            order = rng.permutation(len(chars))  # half keep the plate's width and its character count
    pieces = [img[:, : bounds[0]]] + [img[:, bounds[k]: bounds[k + 1]] for k in order] + [img[:, bounds[-1]:]]
    out = np.concatenate(pieces, axis=1)
    if out.shape[1] != OCR_W:
        import cv2

        out = cv2.resize(out, (OCR_W, img.shape[0]), interpolation=cv2.INTER_AREA)
    new = np.full_like(label, PAD)
    new[: len(order)] = [chars[k] for k in order]
    return np.ascontiguousarray(out), new


def text(label: np.ndarray) -> str:
    return "".join(CHARSET[c] for c in label if c != PAD)
