"""Real plates reordered for OCR training (models.ocr.reshuffle): the alignment, the cuts, the new plate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from firmware.recognition import default_models_dir
from firmware.recognition.ocr import CHARSET, OCR_H, OCR_W, PAD, encode
from models.ocr import reshuffle


def _plate(text: str, x0: int = 6, pitch: int = 24) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A clean grey crop with one character per pitch, and each character's ink columns."""
    img = np.full((OCR_H, OCR_W), 235, np.uint8)
    spans = []
    for k, ch in enumerate(text):
        x = x0 + k * pitch
        cv2.putText(img, ch, (x, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 20, 3, cv2.LINE_AA)
        ink = np.where((img[:, x - 2: x + pitch] < 128).any(axis=0))[0]
        spans.append((x - 2 + int(ink.min()), x - 2 + int(ink.max())))
    return img, spans


def _peaked(label: list[int], at: list[int], T: int = 32) -> np.ndarray:
    logp = np.full((T, len(CHARSET) + 1), np.log(1e-4))
    logp[:, PAD] = np.log(0.99)
    for c, t in zip(label, at):
        logp[t, :] = np.log(1e-4)
        logp[t, c] = np.log(0.99)
    return logp


def test_forced_alignment_finds_each_characters_frames_and_keeps_doubled_ones_apart() -> None:
    label = [CHARSET.index(c) for c in "AA7"]
    assert reshuffle.viterbi(_peaked(label, [4, 9, 20]), label) == [[4], [9], [20]]
    assert reshuffle.viterbi(np.log(np.full((3, len(CHARSET) + 1), 1 / 37)), label) is None  # AA7 needs 4 frames


def test_cuts_fall_between_the_characters_and_crowded_ones_are_not_cut() -> None:
    img, spans = _plate("7AB12")
    frames = [[(a + b) // 2 // reshuffle.STRIDE] for a, b in spans]
    bounds = reshuffle.cuts(img, frames)
    assert bounds is not None and len(bounds) == 6
    for k, (a, b) in enumerate(spans):
        assert bounds[k] <= a and b < bounds[k + 1], (k, bounds, spans)
    assert reshuffle.cuts(img, [[5], [6], [12], [16], [20]]) is None  # a stacked pair: one frame apart
    assert reshuffle.cuts(img, [[5], [], [12], [16], [20]]) is None


def test_a_reshuffled_plate_is_its_own_glyphs_in_the_new_order_and_labelled_so() -> None:
    img, spans = _plate("7AB12")
    label = encode("7AB12")
    bounds = reshuffle.cuts(img, [[(a + b) // 2 // reshuffle.STRIDE] for a, b in spans])
    rng = np.random.default_rng(3)
    seen_same_width = seen_other = False
    for _ in range(40):
        out, new = reshuffle.reshuffle(rng, img, label, bounds)
        text = reshuffle.text(new)
        assert out.shape == (OCR_H, OCR_W) and out.dtype == np.uint8
        assert 0 < len(text) == 5 and set(text) <= set("7AB12")
        if sorted(text) == sorted("7AB12"):
            # a permutation keeps the width: the pieces are the original columns, moved
            order = [ "7AB12".index(c) for c in text]
            pieces = [img[:, : bounds[0]]] + [img[:, bounds[k]: bounds[k + 1]] for k in order] + [img[:, bounds[-1]:]]
            assert np.array_equal(out, np.concatenate(pieces, axis=1))
            seen_same_width = True
        else:
            seen_other = True
    assert seen_same_width and seen_other


def test_the_shipped_ocr_places_cuts_only_on_crops_it_reads_as_labelled() -> None:
    pytest.importorskip("onnxruntime")
    img, spans = _plate("7AB12")
    model = default_models_dir() / "plate_ocr.onnx"
    right, wrong = encode("7AB12"), encode("7AB13")
    got = reshuffle.align(model, np.stack([img, img]), np.stack([right, wrong]))
    assert got[1] is None
    assert got[0] is not None
    for k, (a, b) in enumerate(spans):
        assert got[0][k] <= a + 1 and b - 1 < got[0][k + 1], (k, got[0], spans)


def test_the_mixer_shows_its_share_of_real_crops_reshuffled_and_none_without_cuts(tmp_path) -> None:
    pytest.importorskip("torch")  # models.ocr.train imports it
    from models.ocr.train import Mixer

    img, spans = _plate("7AB12")
    bounds = reshuffle.cuts(img, [[(a + b) // 2 // reshuffle.STRIDE] for a, b in spans])
    x, y = np.stack([img] * 4), np.stack([encode("7AB12")] * 4)
    texts = lambda labels: {reshuffle.text(lab) for lab in labels.numpy()}  # noqa: E731
    plain = Mixer(tmp_path, [(x, y, 1.0)], seed=1)
    assert texts(plain.batch(32)[1]) == {"7AB12"}
    none_cut = Mixer(tmp_path, [(x, y, 1.0)], seed=1, cuts=[[None] * 4], reshuffle_share=1.0)
    assert texts(none_cut.batch(32)[1]) == {"7AB12"}
    mixed = Mixer(tmp_path, [(x, y, 1.0)], seed=1, cuts=[[bounds] * 4], reshuffle_share=1.0)
    xb, yb = mixed.batch(32)
    assert xb.shape == (32, 1, OCR_H, OCR_W) and len(texts(yb)) > 10
    assert all(set(t) <= set("7AB12") and len(t) == 5 for t in texts(yb))


def test_a_plate_reshuffled_in_its_format_trades_letters_with_letters_and_digits_with_digits() -> None:
    img, spans = _plate("7AB12")
    bounds = reshuffle.cuts(img, [[(a + b) // 2 // reshuffle.STRIDE] for a, b in spans])
    rng = np.random.default_rng(5)
    texts = set()
    for _ in range(120):
        out, new = reshuffle.reshuffle(rng, img, encode("7AB12"), bounds, keep_format=True)
        text = reshuffle.text(new)
        assert out.shape == (OCR_H, OCR_W) and sorted(text) == sorted("7AB12")
        assert [c.isdigit() for c in text] == [c.isdigit() for c in "7AB12"]
        texts.add(text)
    assert len(texts) == 12  # 3! placings of 7, 1, 2 times 2! of A, B
