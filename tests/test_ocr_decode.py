"""OCR decoding: exact top-N from slot probabilities, pads, confidences, format prior."""

import numpy as np
import pytest

from firmware.recognition import ocr


def probs_for(text: str, p: float = 0.9, alt: dict[int, tuple[str, float]] | None = None) -> np.ndarray:
    out = np.full((ocr.SLOTS, len(ocr.CHARSET) + 1), 1e-4)
    labels = ocr.encode(text)
    for s, c in enumerate(labels):
        out[s, c] = p
        if alt and s in alt:
            ch, q = alt[s]
            out[s, ocr.CHARSET.index(ch) if ch != "_" else ocr.PAD] = q
    return out / out.sum(1, keepdims=True)


def test_top1_is_the_argmax_text_and_confidence_is_the_product():
    p = probs_for("7ABC123", 0.99)
    r = ocr.decode(p)
    assert r.plate == "7ABC123"
    assert r.confidence == pytest.approx(float(np.prod(p.max(1))), rel=1e-6)


def test_candidates_cover_confusions_in_order():
    r = ocr.decode(probs_for("8OB1234", 0.6, {1: ("0", 0.35), 0: ("B", 0.3)}), top_n=4)
    texts = [c.plate for c in r.candidates]
    assert texts[0] == "8OB1234"
    assert "80B1234" in texts and "BOB1234" in texts
    confs = [c.confidence for c in r.candidates]
    assert confs == sorted(confs, reverse=True)


def test_pad_slots_are_dropped_and_same_texts_add_up():
    # slot 3 is either pad or 'Z'; a pad inside gives the same text as pad at the end
    p = probs_for("ABC", 0.95, {3: ("Z", 0.3)})
    r = ocr.decode(p, top_n=3)
    assert r.plate == "ABC" and any(c.plate == "ABCZ" for c in r.candidates)


def test_us_format_prior_prefers_a_common_serial():
    p = probs_for("7ABC12O", 0.55, {6: ("3", 0.45)})
    assert ocr.decode(p).plate == "7ABC12O"
    assert ocr.decode(p, us_format_rules=True).plate == "7ABC123"


def test_us_format_prior_outweighs_a_three_to_one_misread_but_not_a_clear_read():
    """US_FORMAT_WEIGHT 4: a formatted text a third as likely as an unformatted one wins (W772UQ over W772U0
    on a real crop), one a sixth as likely does not (a vanity plate read clearly stays as read)."""
    close = probs_for("7ABC12O", 0.75, {6: ("3", 0.25)})
    assert ocr.decode(close, us_format_rules=True).plate == "7ABC123"
    clear = probs_for("7ABC12O", 0.86, {6: ("3", 0.14)})
    r = ocr.decode(clear, us_format_rules=True)
    assert r.plate == "7ABC12O"


def test_us_format_prior_reads_a_lone_letter_among_digits_as_the_digit():
    """Serials of digits alone are US serials too (42 of us-crops-dev's 375 plates): New Hampshire's 2470410
    read 24704I0 by a split-trained network is put right by the prior, as a formatted text is."""
    p = probs_for("24704I0", 0.6, {5: ("1", 0.4)})
    assert ocr.decode(p).plate == "24704I0"
    assert ocr.decode(p, us_format_rules=True).plate == "2470410"


def test_us_format_prior_leaves_a_california_commercial_letter_to_the_network():
    """1A23456 (California commercial) is a format of its own, so the digits-only reading of its letter
    (4812345 for 4B12345) gains nothing over it; a weak detection reading digits alone is still no plate by
    format (a sign's phone number: `in_us_format` without `numbers`)."""
    p = probs_for("4B12345", 0.6, {1: ("8", 0.4)})
    assert ocr.decode(p, us_format_rules=True).plate == "4B12345"
    assert ocr.in_us_format("4B12345") and not ocr.in_us_format("4812345")
    assert ocr.in_us_format("4812345", numbers=True) and not ocr.in_us_format("4812", numbers=False)


def test_normalise_and_encode():
    assert ocr.normalise(" 7abc-123 ") == "7ABC123"
    with pytest.raises(ValueError):
        ocr.encode("ABCDEFGHIJ")
    batch = ocr.preprocess([np.zeros((40, 90, 3), np.uint8), np.full((200, 400), 255, np.uint8)])
    assert batch.shape == (2, 1, ocr.OCR_H, ocr.OCR_W) and batch.dtype == np.float32
    assert batch[1].min() == 1.0


def ctc_probs(columns: list[str], p: float = 0.9) -> np.ndarray:
    """Per-column probabilities: '_' is the blank."""
    out = np.full((len(columns), len(ocr.CHARSET) + 1), (1 - p) / len(ocr.CHARSET))
    for t, ch in enumerate(columns):
        out[t, ocr.PAD if ch == "_" else ocr.CHARSET.index(ch)] = p
    return out


def test_ctc_collapses_repeats_and_needs_a_blank_for_doubles():
    r = ocr.decode_ctc(ctc_probs(list("_77_AA_B__CC_1_1_")))
    assert r.plate == "7ABC11"
    assert ocr.decode_ctc(ctc_probs(list("_11__"))).plate == "1"


def test_ctc_probability_sums_alignments_and_ranks_confusions():
    cols = ctc_probs(list("_A_B_8_"), 0.97)
    cols[3, ocr.CHARSET.index("B")] = 0.6
    cols[3, ocr.CHARSET.index("8")] = 0.38
    cols[3] /= cols[3].sum()
    r = ocr.decode_ctc(cols, top_n=3)
    assert [c.plate for c in r.candidates[:2]] == ["AB8", "A88"]
    assert 0.4 < r.confidence < 0.65
    assert ocr.decode_ctc(ctc_probs(list("____"))).plate == ""


def test_fuse_averages_each_text_over_the_views():
    """A text likely in every view beats one that only a single view is sure of."""
    a = probs_for("7ABC123", 0.95)                       # sure of 7ABC123
    b = probs_for("7ABC123", 0.7, {1: ("4", 0.29)})      # unsure: 7ABC123 or 74BC123
    c = probs_for("TABC123", 0.9, {0: ("7", 0.09)})      # misread the first character
    r = ocr.fuse([a, b, c], ocr.decode, top_n=3)
    singles = {t: [{x.plate: x.confidence for x in ocr.decode(p, 10).candidates}.get(t, 0.0) for p in (a, b, c)]
               for t in ("7ABC123", "TABC123")}
    assert r.plate == "7ABC123"
    assert r.confidence == pytest.approx(sum(singles["7ABC123"]) / 3, rel=1e-6)
    assert dict((x.plate, x.confidence) for x in r.candidates)["TABC123"] == pytest.approx(
        sum(singles["TABC123"]) / 3, rel=1e-6)


def test_second_views_zoom_in_and_pad_out():
    crop = np.zeros((100, 200, 3), np.uint8)
    zoomed, padded = ocr.second_views(crop)
    assert zoomed.shape == (88, 184, 3) and padded.shape == (112, 216, 3)
    tiny = np.zeros((6, 10), np.uint8)
    assert ocr.second_views(tiny)[0].shape == tiny.shape  # too small to zoom: kept as it is


def test_unrolled_views_turn_a_rolled_plate_level_and_cut_it_to_the_plate():
    """A white 2:1 plate rolled 15 degrees in its axis-aligned box: the view turned back 16 degrees the
    right way is nearly all plate, the wrong way and the box as cut much less so."""
    from firmware.recognition.detect import _turned

    crop = _turned(np.full((80, 160, 3), 255, np.uint8), 15, 0)[0]  # the box a 160x80 plate rolled 15 degrees fills
    views = ocr.unrolled_views(crop)
    assert len(views) == 2 * len(ocr.ROLL_LOOK_DEGREES)  # each angle both ways
    white = [float((v > 127).mean()) for v in views]
    assert float((crop > 127).mean()) < 0.7
    assert white[3] > 0.93 and white[3] > white[2] + 0.2   # 16 degrees back the right way (clockwise), the wrong way
    level = np.full((40, 160, 3), 255, np.uint8)          # a box too flat to hold a plate rolled 16 degrees
    assert len(ocr.unrolled_views(level)) == 2
