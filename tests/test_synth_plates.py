"""The synthetic plate generator: labels stay the registration, clutter stays out of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.synth import plates


def test_render_plate_returns_the_label_it_drew() -> None:
    rng = np.random.default_rng(3)
    for text in ("7ABC123", "N3934", "I LEGO", "w17k"):
        img, label = plates.render_plate(rng, text)
        assert label == "".join(c for c in text.upper() if c in plates.CHARSET)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert 1.2 < img.shape[1] / img.shape[0] < 3.5


def test_side_code_is_small_stacked_characters() -> None:
    """Two or three characters, each well under the registration's height, one above the other."""
    col = plates._side_code(np.random.default_rng(1), "hershey:0", 0, 90, 0.8)
    rows = np.nonzero(col.max(axis=1) > 40)[0]
    assert col.shape[0] == 90 and col.shape[1] < 60
    gaps = np.nonzero(np.diff(rows) > 1)[0]
    assert 1 <= len(gaps) <= 2  # the characters are separate rows of ink


def test_random_texts_follow_the_formats() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        t = plates.random_text(rng)
        assert 1 <= len(t) <= 8 and set(t) <= set(plates.CHARSET)


def test_picture_separators_are_drawn_apart_from_the_characters() -> None:
    """Pictures come back separately from the character mask, inside it and with a valid alpha."""
    pictures = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        mask, pics = plates._text_mask(rng, "ABC123", 80, 10_000, ink=(0, 0, 0))
        pictures += len(pics)
        for p in pics:
            assert p.bgr.shape[:2] == p.alpha.shape == (80, p.bgr.shape[1])
            assert 0.0 <= float(p.alpha.min()) and float(p.alpha.max()) <= 1.0
            assert 0 <= p.x < mask.shape[1]
    assert pictures > 20  # about a fifth of six-character plates carry a picture separator


def test_a_picture_beside_the_text_keeps_clear_of_every_character(monkeypatch) -> None:
    """Arizona's cactus or a county seal sits beside the registration, never over it: before, half the
    plates with such a picture had it over the first or last character (the simulated road's 1CPS023,
    its 1 under a heart, read CPS023 in every frame)."""
    calls: list[tuple] = []
    paste, blend = plates._paste, plates._blend
    monkeypatch.setattr(plates, "_paste", lambda img, bgr, a, x, y: (calls.append(("picture", x, a)), paste(img, bgr, a, x, y))[1])
    monkeypatch.setattr(plates, "_blend", lambda img, m, x, y, c: (calls.append(("text", x, m)), blend(img, m, x, y, c))[1])
    rng = np.random.default_rng(0)
    beside = 0
    for _ in range(600):
        calls.clear()
        plates._plate_face(rng, plates.random_text(rng))
        texts = [k for k, c in enumerate(calls) if c[0] == "text"]
        side = [c for c in calls[: texts[0]] if c[0] == "picture"]  # pasted before the text: beside it
        if not side:
            continue
        beside += 1
        _, x, mask = calls[texts[-1]]
        ink = np.flatnonzero(mask.max(0) > 0)
        (_, px, alpha), = side
        drawn = np.flatnonzero(alpha.max(0) > 0.05)
        assert px + drawn[-1] < x + ink[0] or px + drawn[0] > x + ink[-1]
    assert beside > 50


def test_the_text_keeps_a_margin_clear_of_any_dealer_frame(monkeypatch) -> None:
    """No character is drawn against the plate's side or a dealer frame over it: a leading I flush against
    a dark frame made one bar with it (the simulated road's IWZ1553 read WZ1553 in every frame)."""
    texts: list[tuple[int, np.ndarray]] = []
    frames: list[int] = []
    blend, frame = plates._blend, plates._frame
    monkeypatch.setattr(plates, "_blend", lambda img, m, x, y, c: (texts.append((x, m)), blend(img, m, x, y, c))[1])

    def framed(rng, img):
        out = frame(rng, img)
        mid = plates.PLATE_H // 2  # at mid-height only the frame's sides are painted
        side = np.flatnonzero((out[mid] != img[mid]).any(axis=1))
        side = side[side < plates.PLATE_W // 2]
        frames.append(int(side.max()) if side.size else -1)
        return out

    monkeypatch.setattr(plates, "_frame", framed)
    rng = np.random.default_rng(3)
    for _ in range(400):
        texts.clear()
        plates._plate_face(rng, plates.random_text(rng))
        x, mask = texts[-1]
        ink = np.flatnonzero(mask.max(0) > 0)
        assert x + ink[0] >= plates.TEXT_MARGIN and x + ink[-1] < plates.PLATE_W - plates.TEXT_MARGIN
    assert frames and max(frames) <= plates.TEXT_MARGIN - 6  # the widest frame side leaves the gap


def test_a_dealer_frame_prints_a_name_above_and_below_and_keeps_clear_of_the_registration() -> None:
    """`_dealer_frame` paints bars over the header and footer with words on them (a scenes-ca Toyota frame's
    name, printed a few pixels under the registration, read 7A33474 as ZM3347), and never paints the band
    the registration is drawn in beyond the frame's sides, which the text keeps clear of."""
    rng = np.random.default_rng(5)
    worded = 0
    for _ in range(60):
        top, bottom = int(rng.integers(30, 60)), int(rng.integers(110, 135))
        face = np.full((plates.PLATE_H, plates.PLATE_W, 3), 235, np.uint8)
        out = plates._dealer_frame(rng, face, top, bottom)
        inner = slice(plates.FRAME_MAX_SIDE, plates.PLATE_W - plates.FRAME_MAX_SIDE)
        assert (out[top - 1: bottom + 1, inner] == face[top - 1: bottom + 1, inner]).all()
        for rows in (out[: top - 1, inner], out[bottom + 1:, inner]):
            bar = rows.reshape(-1, 3)
            changed = (bar != 235).any(axis=1)
            colours = {tuple(v) for v in bar[changed]}
            worded += len(colours) > 2  # the bar's colour, its words' and their antialiased edges
    assert worded >= 40  # most bars carry words (a fifth are left bare, and bars under 8 px)


def test_dealer_frames_are_drawn_only_when_asked_for() -> None:
    """`render_plate(dealer_share=...)` draws its share in dealer frames; without it the seed's plates are the
    ones it always drew (its coin is not tossed)."""
    a = plates.render_plate(np.random.default_rng(9), "7ABC123")[0]
    b = plates.render_plate(np.random.default_rng(9), "7ABC123", dealer_share=0.0)[0]
    assert np.array_equal(a, b)
    framed = [plates.render_plate(np.random.default_rng(s), "7ABC123", dealer_share=1.0)[0] for s in range(4)]
    plain = [plates.render_plate(np.random.default_rng(s), "7ABC123")[0] for s in range(4)]
    assert all(f.shape != p.shape or not np.array_equal(f, p) for f, p in zip(framed, plain))


@pytest.mark.parametrize("kind_seed", range(24))
def test_pictures_have_colour_and_shape(kind_seed: int) -> None:
    bgr, alpha = plates._picture(np.random.default_rng(kind_seed), 60, 40, (0, 0, 0))
    assert bgr.shape == (60, 40, 3) and alpha.shape == (60, 40)
    assert 0.03 < float((alpha > 0.5).mean()) < 0.95


def test_export_averages_checkpoints() -> None:
    torch = pytest.importorskip("torch")
    from models.ocr.export import average

    a = {"w": torch.ones(2, 2), "n": torch.tensor(3)}
    b = {"w": torch.full((2, 2), 3.0), "n": torch.tensor(5)}
    out = average([a, b])
    assert torch.equal(out["w"], torch.full((2, 2), 2.0))
    assert int(out["n"]) == 5  # integer buffers (batch counts) come from the last


def test_illegibility_sees_ink_lost_on_its_background():
    """Dark ink over a dark band of a design vanishes; the generator then takes a legible ink."""
    import numpy as np

    from models.synth.plates import LEGIBLE, _illegibility, _legible_ink

    img = np.full((160, 320, 3), 230, np.uint8)
    img[:, 100:180] = 25                                   # a dark shield behind part of the text
    mask = np.zeros((70, 240), np.uint8)
    mask[10:60, ::12] = 255                                 # strokes across the whole text
    mask[10:60, 1::12] = 255
    black, white = (20, 20, 20), (245, 245, 245)
    assert _illegibility(img, mask, 40, 40, black) > LEGIBLE       # the strokes over the shield are gone
    assert _illegibility(img, mask, 40, 40, white) > LEGIBLE       # and white vanishes on the rest
    dark = (25, 25, 25)
    img[:, 100:180] = 230
    assert _illegibility(img, mask, 40, 40, black) == 0.0
    assert _legible_ink(img, mask, 40, 40, black) == black          # a legible ink is kept
    img[:] = 30                                                     # an all-dark design
    assert _illegibility(img, mask, 40, 40, dark) > LEGIBLE
    assert _legible_ink(img, mask, 40, 40, dark) == (245, 245, 245)  # the generator's choice: white


def test_characters_no_ink_can_show_on_a_busy_design_are_outlined():
    """A design half white, half dark: white ink vanishes on the one, black on the other, so the
    characters get a contrasting rim and read everywhere; a legible plate is left untouched."""
    from models.synth.plates import LEGIBLE, _illegibility, _legible_ink, _outline_if_illegible

    img = np.full((160, 320, 3), 235, np.uint8)
    img[:, 160:] = (30, 30, 80)                                     # a dark red half under the text
    mask = np.zeros((70, 240), np.uint8)
    mask[10:60, ::12] = 255
    mask[10:60, 1::12] = 255
    ink = _legible_ink(img, mask, 40, 40, (245, 245, 245))
    assert _illegibility(img, mask, 40, 40, ink) > LEGIBLE          # no ink of INKS reads on both halves
    before = img.copy()
    assert _outline_if_illegible(img, mask, 40, 40, ink)
    assert _illegibility(img, mask, 40, 40, ink) <= LEGIBLE
    assert (img != before).any() and (img[:, :30] == before[:, :30]).all()  # only around the characters
    plain = np.full((160, 320, 3), 235, np.uint8)
    kept = plain.copy()
    assert not _outline_if_illegible(plain, mask, 40, 40, (20, 20, 20)) and (plain == kept).all()


def test_serial_letters_are_drawn_as_real_plates_use_them():
    """O, Q and I are rare in US serials (they read as 0 and 1); the generator draws them so."""
    from collections import Counter

    import numpy as np

    from models.synth.plates import random_text

    rng = np.random.default_rng(3)
    counts = Counter(ch for _ in range(6000) for ch in random_text(rng) if ch.isalpha())
    mean = sum(counts.values()) / 26
    # vanity positions (even over all 36) dilute it: about 0.4, 0.55, 0.65 of the mean
    assert counts["O"] < 0.5 * mean and counts["Q"] < 0.65 * mean and counts["I"] < 0.75 * mean
    assert min(counts[ch] for ch in "ABCDEFGHJKLMNPRSTUVWXYZ") > 0.8 * mean


def test_shards_of_another_width_fit_the_ocr_input_and_every_ctc_arch_reads_it() -> None:
    """One set of rendered plates serves OCR models of several input widths, and a ctc run starts
    ctc-2x (training only: needs PyTorch)."""
    torch = pytest.importorskip("torch")
    from firmware.recognition.ocr import CHARSET, OCR_H, OCR_W
    from models.ocr.net import ARCHS
    from models.ocr.train import fit_shard

    wide = np.zeros((3, OCR_H, OCR_W + 64), np.uint8)
    wide[:, :, : (OCR_W + 64) // 2] = 255  # left half white: stays the left half after resizing
    fitted = fit_shard(wide)
    assert fitted.shape == (3, OCR_H, OCR_W)
    assert fitted[:, :, : OCR_W // 2 - 1].min() == 255 and fitted[:, :, OCR_W // 2 + 1:].max() == 0
    same = np.zeros((2, OCR_H, OCR_W), np.uint8)
    assert fit_shard(same) is same
    x = torch.from_numpy(fitted[:, None].astype(np.float32) / 255)
    for arch in ("ctc", "ctc-l"):
        assert ARCHS[arch]().eval()(x).shape == (3, OCR_W // 4, len(CHARSET) + 1)
    # ctc-2x: two output frames a column, and before training each pair repeats its column
    # (nearest-neighbour upsampling), so the CTC decoder reads what the backbone sees
    fine = ARCHS["ctc-2x"]().eval()
    assert fine(x).shape == (3, OCR_W // 2, len(CHARSET) + 1)
    f = fine.backbone(x).squeeze(2)
    up = fine.up(f)
    assert torch.allclose(up[:, :, 0::2], f) and torch.allclose(up[:, :, 1::2], f)
    # a ctc run's weights start ctc-2x (only the upsampling layer is new); a wider net's are refused
    from models.ocr.train import start_from
    ctc = ARCHS["ctc"]()
    assert start_from(fine, ctc.state_dict()) == ["up.weight"]
    assert torch.equal(fine.backbone[0][0].weight, ctc.backbone[0][0].weight)
    with pytest.raises(ValueError, match="do not fit"):
        start_from(fine, ARCHS["ctc-l"]().state_dict())
    # the shipped architecture keeps its parameter count, so 0.5.0's ONNX still warm-starts it
    assert sum(p.numel() for p in ARCHS["ctc"]().parameters()) == 380229


def _as_trained(net):
    """`net` with batch norms as a trained network's: fresh ones fold to equal biases, which ONNX export
    shares between convolutions, and a warm start could not tell the convolutions apart."""
    import torch

    for mod in net.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            torch.nn.init.uniform_(mod.weight, 0.5, 1.5)
            torch.nn.init.normal_(mod.bias, 0, 0.1)
            torch.nn.init.normal_(mod.running_mean, 0, 0.1)
    return net.eval()


def test_ctc_g_starts_as_the_ctc_network_it_is_warm_started_from_and_looks_along_the_plate(tmp_path) -> None:
    """ctc-g adds attention across the CTC columns (O against 0 is a glyph's width against the plate's
    other digits): from a ctc file it reads exactly as that file until trained, after which a change at one
    end of the crop reaches the other end's columns, and it exports to an ONNX file ONNX Runtime reads."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from firmware.recognition.ocr import CHARSET, OCR_H, OCR_W
    from models import warmstart
    from models.ocr.export import export
    from models.ocr.net import ARCHS

    torch.manual_seed(0)
    ctc = _as_trained(ARCHS["ctc"]())
    path = tmp_path / "ctc.onnx"
    x = torch.rand(2, 1, OCR_H, OCR_W)
    export(ctc, path)
    g = ARCHS["ctc-g"]()
    warmstart.load_shipped_ocr(g, path)  # raises when the outputs differ from the file's
    g.eval()
    with torch.no_grad():
        assert torch.allclose(g(x), ctc(x), atol=1e-4)
        # trained (here: the zero output projection given weights), the rightmost column sees the left edge
        torch.nn.init.normal_(g.attend.o.weight, std=0.1)
        y = x.clone()
        y[:, :, :, :8] = 1.0 - y[:, :, :, :8]
        assert not torch.allclose(g(x)[:, -1], g(y)[:, -1], atol=1e-6)
        assert torch.equal(ctc(x)[:, -1], ctc(y)[:, -1])  # the plain network's columns see about 64 px
        out = tmp_path / "g.onnx"
        export(g, out)  # checks ONNX Runtime against PyTorch itself
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": x.numpy()})[0]
        assert got.shape == (2, OCR_W // 4, len(CHARSET) + 1)
        assert np.abs(got - g(x).numpy()).max() < 1e-3
    # a shipped file names its network, and a ctc-g file warm-starts ctc-g again, attention and all
    assert warmstart.shipped_arch(path) == "ctc" and warmstart.shipped_arch(out) == "ctc-g"
    again = ARCHS["ctc-g"]()
    warmstart.load_shipped_ocr(again, out)
    assert torch.equal(again.attend.o.weight, g.attend.o.weight)


def test_plate_fonts_tell_the_texts_letters_from_their_lookalike_digits() -> None:
    """A synthetic O drawn like a 0 is a label no reader could earn: the font is chosen so it cannot be."""
    assert plates.glyph_overlap("hershey:1", 0, "O", "O") == pytest.approx(1.0)
    assert "O" in plates.ambiguous_letters("hershey:1", 0)      # duplex: O is a 0 twelve per cent wider
    # the stroke fonts draw one oval for both, 10-13 % wider as O, at every stroke (the overlap alone let
    # simplex at stroke 0 and plain at strokes 1 and 3 through); the desktop sans fonts' O is clearly wider
    for i in range(len(plates.HERSHEY)):
        for bold in plates.HERSHEY_BOLD:
            assert "O" in plates.ambiguous_letters(f"hershey:{i}", bold), (i, bold)
    sans = [f for f in plates._fonts() if f.endswith(("/DejaVuSans.ttf", "/FreeSans.ttf", "/NotoSans-Regular.ttf"))]
    assert len(sans) == 3
    for font in sans:
        assert "O" not in plates.ambiguous_letters(font, 0), font
    rng = np.random.default_rng(5)
    chosen = {plates._font_choice(rng, "QOB1I80") for _ in range(300)}
    assert len(chosen) > 5  # still a spread of fonts
    for font, bold in chosen:
        assert not plates.ambiguous_letters(font, bold) & set("QOB1I80"), (font, bold)
    # texts without those letters keep every font, ambiguous ones included
    anyfont = {plates._font_choice(rng, "123ACE")[0] for _ in range(600)}
    assert "hershey:1" in anyfont
    # unchecked (`gen --unchecked-font-share`, as 0.5.0 was trained): the O may be drawn like a 0
    unchecked = {plates._font_choice(rng, "QOB1I80", font_check=False) for _ in range(600)}
    assert any(plates.ambiguous_letters(f, b) & set("QOB1I80") for f, b in unchecked)


def test_die_fonts_are_drawn_for_their_share_with_a_dies_proportions_and_the_font_check() -> None:
    """`die_font_share`: that share of plates in a plate-die lookalike (FHWA series, DIN, routed), each
    squeezed to a die's width whatever the series' own, and still never an O drawn like its 0."""
    assert plates._die_fonts() == plates.DIE_FONT_FILES  # scripts/test installs them all
    rng = np.random.default_rng(3)
    picks = [plates._font_choice(rng, "7ABC123", die_font_share=0.5)[0] for _ in range(400)]
    share = sum(f in plates.DIE_FONT_FILES for f in picks) / len(picks)
    assert 0.4 < share < 0.6 and len({f for f in picks if f in plates.DIE_FONT_FILES}) >= 5
    # the highway series draw O as their 0: a text with an O is never drawn in them
    assert "O" in plates.ambiguous_letters("/usr/share/fonts/truetype/roadgeek/RG2014C.ttf", 0)
    for _ in range(200):
        font, bold = plates._font_choice(rng, "OTP14M", die_font_share=1.0)
        assert "O" not in plates.ambiguous_letters(font, bold), (font, bold)
    # proportions: a wide series (E) and a narrow one (B) come out as dies of one width range
    widths = {}
    for name in ("RG2014B", "RG2014E"):
        font = next(f for f in plates.DIE_FONT_FILES if name in f)
        widths[name] = plates._glyph(font, "0", 0).shape[1] / 96
    assert widths["RG2014E"] > 1.6 * widths["RG2014B"]
    drawn = []
    for seed in range(40):
        r = np.random.default_rng(seed)
        mask, _ = plates._text_mask(r, "000", 96, 2000, stack_share=0.0, die_font_share=1.0)
        cols = np.flatnonzero((mask > 100).any(axis=0))
        runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
        drawn.append(float(np.median([len(run) for run in runs])) / 96)  # the three 0s (a side code is narrower)
    assert drawn and min(drawn) > 0.3 and max(drawn) < 0.75, (min(drawn), max(drawn))


def test_roll_turns_the_plate_inside_the_box_that_encloses_it() -> None:
    """Training's roll augmentation: same size and type, no change at 0 degrees, and a level
    bar comes out slanted, within the bound (the box's stretch back to 2:1 only flattens it)."""
    pytest.importorskip("torch")  # models.ocr.train imports it
    from models.ocr.train import roll

    img = np.full((64, 128), 200, np.uint8)
    img[28:36, 10:118] = 20  # a level dark bar across the crop
    same = roll(np.random.default_rng(0), img, 0.0)
    assert same.shape == img.shape and same.dtype == np.uint8 and np.array_equal(same, img)
    rng = np.random.default_rng(1)
    rises = []
    for _ in range(8):
        out = roll(rng, img, 18.0)
        assert out.shape == img.shape and out.dtype == np.uint8
        left, right = int(np.argmin(out[16:48, 40])), int(np.argmin(out[16:48, 88]))  # the bar's row, 48 px apart
        rises.append(abs(left - right))
    assert max(rises) >= 3                             # turned
    assert max(rises) <= np.tan(np.radians(18)) * 48 + 2  # by no more than 18 degrees


def test_smear_blurs_along_the_road_or_lowers_the_resolution() -> None:
    """Training's smear augmentation: same size and type, and a crisp vertical edge comes out softer."""
    pytest.importorskip("torch")  # models.ocr.train imports it
    from models.ocr.train import smear

    img = np.full((64, 128), 230, np.uint8)
    img[:, 64:] = 20  # one vertical edge: a stroke of a character
    rng = np.random.default_rng(2)
    widths = []
    for _ in range(12):
        out = smear(rng, img)
        assert out.shape == img.shape and out.dtype == np.uint8
        widths.append(int(((out[32] > 40) & (out[32] < 210)).sum()))  # pixels of the edge's ramp
    assert int(((img[32] > 40) & (img[32] < 210)).sum()) == 0  # the edge as drawn has no ramp
    assert max(widths) >= 3                                    # smeared, it has one


def test_jpeg_loss_codes_the_crop_in_blocks_at_the_size_it_had_in_the_frame() -> None:
    """Training's JPEG augmentation: same size and type, a crisp plate always comes out changed (scaled
    down, coded, scaled back), a flat grey as it was."""
    pytest.importorskip("torch")  # models.ocr.train imports it
    from models.ocr.train import jpeg_loss

    img = np.full((64, 128), 230, np.uint8)
    for x in range(12, 116, 16):
        img[14:50, x:x + 5] = 20  # upright strokes, as glyphs have
    rng = np.random.default_rng(3)
    errors = []
    for _ in range(12):
        out = jpeg_loss(rng, img)
        assert out.shape == img.shape and out.dtype == np.uint8
        errors.append(float(np.abs(out.astype(np.float32) - img).mean()))
    assert min(errors) > 0.5  # always changed
    flat = np.full((64, 128), 128, np.uint8)
    assert np.abs(jpeg_loss(rng, flat).astype(np.int16) - 128).max() <= 2  # a flat grey codes to itself


def test_packed_pools_give_the_split_or_every_us_plate_and_a_bad_pack_is_named(tmp_path) -> None:
    """`train --pools`: the pools of a --pack file, both halves of the US sets training with --all-us,
    the validation halves always apart; a file that is no pack stops with its name, no traceback."""
    pytest.importorskip("torch")  # models.ocr.train imports it
    from models.ocr.train import _pool_loaders, real_pools

    sizes = {"br": 5, "us_train": 3, "us_val": 2, "ar": 4, "ca_train": 6, "ca_hold_all": 8, "ca_hold": 2}
    assert set(sizes) == set(_pool_loaders())
    pack = tmp_path / "pools.npz"
    np.savez(pack, **{f"{k}_{a}": np.full((n, 2, 2) if a == "x" else (n, 8), i, np.int64)
                      for i, (k, n) in enumerate(sizes.items()) for a in "xy"})
    split = real_pools(False, True, pack)
    assert {k: len(v[0]) for k, v in split.items()} == {"br": 5, "us_tr": 3, "us_va": 2, "ar": 4, "ca_hold": 2, "ca": 6}
    every = real_pools(True, True, pack)
    assert len(every["us_tr"][0]) == 5 and len(every["ca"][0]) == 14 and len(every["us_va"][0]) == 2
    assert sorted(set(every["ca"][1].ravel())) == [4, 5]  # the training half and the hold-out at every trim
    assert "ca" not in real_pools(False, False, pack)
    np.savez(tmp_path / "other.npz", a=np.zeros(1))
    with pytest.raises(SystemExit, match="other.npz: not a --pack file"):
        real_pools(False, False, tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(SystemExit, match="junk.npz: not readable"):
        real_pools(False, False, tmp_path / "junk.npz")


def test_the_test_command_installs_every_plate_font() -> None:
    """CI starts from Debian's base: scripts/test must install each font folder the generator
    draws from, or the tests would render other plates than training and the benchmarks do."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "scripts" / "test").read_text()
    folders = {str(Path(f).parent) for f in plates.FONT_FILES + plates.DIE_FONT_FILES}
    assert folders and all(f"[ -f {folder}/" in script for folder in folders), folders


def test_mixture_is_the_mean_of_its_members_probabilities_and_exports_as_one_model(tmp_path) -> None:
    """An OCR mixture file is read by the runtime as one model: softmax of its output is the mean of the
    members' softmaxes, and a warm start finds each member's weights in it again."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from firmware.recognition.ocr import OCR_H, OCR_W
    from models.ocr.export import export
    from models.ocr.net import ARCHS, Mixture
    from models.warmstart import load_folded_onnx

    torch.manual_seed(0)
    members = [ARCHS["ctc"]().eval() for _ in range(2)]
    for m in members:  # trained-like batch norm, which export folds into the convolutions (and identical
        for mod in m.modules():  # untrained folded biases would be merged into one tensor)
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.1, 0.1)
    mix = Mixture(members).eval()
    x = torch.rand(3, 1, OCR_H, OCR_W)  # export writes the firmware's input size
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(x), -1) for m in members]).mean(0)
        got = torch.softmax(mix(x), -1)
    assert torch.allclose(got, want, atol=1e-6)
    path = tmp_path / "mix.onnx"
    export(mix, path)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    assert out.shape == (3, OCR_W // 4, 37)
    assert np.allclose(np.exp(out).sum(-1), 1.0, atol=1e-5)
    again = Mixture([ARCHS["ctc"](), ARCHS["ctc"]()])
    load_folded_onnx(again, path, torch.rand(2, 1, OCR_H, OCR_W))  # raises if the outputs differ
    with torch.no_grad():
        assert torch.allclose(again.members[1](x), members[1](x), atol=1e-3)


def test_lookalike_texts_put_lookalike_letters_where_the_format_wants_letters() -> None:
    """Look-alike shards (`gen --lookalike-share`) teach O/Q/D against 0, I/T against 1, B against 8 by
    shape: every text with letters has one of them, texts stay plate-length, and render keeps the label."""
    rng = np.random.default_rng(3)
    texts = [plates.lookalike_text(rng) for _ in range(300)]
    assert all(1 <= len(t) <= 8 and t.isalnum() and t == t.upper() for t in texts)
    with_letters = [t for t in texts if any(ch.isalpha() for ch in t)]
    assert with_letters and all(any(ch in plates.LOOKALIKE_LETTERS for ch in t) for t in with_letters)
    def oq_share(ts: list[str]) -> float:
        return sum(ch in "OQ" for t in ts for ch in t) / sum(ch.isalpha() for t in ts for ch in t)

    assert oq_share(texts) > 1.8 * oq_share([plates.random_text(rng) for _ in range(300)])  # 9.6 % against 4.5 %
    img, label = plates.render_plate(rng, texts[0])
    assert label == texts[0] and img.ndim == 3


def test_round_texts_with_q_put_q_beside_o_and_zero() -> None:
    """`gen --round-letters QO`: every text with letters has a Q or an O, Qs far commoner than in serials
    (where they are drawn at SERIAL_LETTER_WEIGHT['Q']), and no other look-alike letter is favoured."""
    rng = np.random.default_rng(6)
    texts = [plates.round_text(rng, letters="QO") for _ in range(400)]
    assert all(set(t) & set("QO") for t in texts if any(ch.isalpha() for ch in t))
    ref = [plates.random_text(rng) for _ in range(400)]
    share = lambda ts, c: sum(ch == c for t in ts for ch in t) / sum(ch.isalpha() for t in ts for ch in t)
    assert share(texts, "Q") > 5 * share(ref, "Q") and share(texts, "O") > 5 * share(ref, "O")
    assert share(texts, "I") < 2 * share(ref, "I")


def test_gen_refuses_round_letters_that_are_not_letters(tmp_path) -> None:
    """A typo in --round-letters is named, before any shard is drawn."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "models.ocr.gen", "--out", str(tmp_path), "--shards", "1",
                          "--round-share", "0.3", "--round-letters", "q0"], capture_output=True, text=True)
    assert run.returncode == 2 and "--round-letters 'q0'" in run.stderr and not list(tmp_path.iterdir())


def test_round_texts_carry_an_o_wherever_they_have_letters_and_keep_the_format() -> None:
    """Round shards (`gen --round-share`) put O where the format wants a letter and 0 where it wants a digit,
    nothing else changed: every text with letters has an O, and Os are far commoner than in serials."""
    rng = np.random.default_rng(5)
    texts = [plates.round_text(rng) for _ in range(300)]
    assert all(1 <= len(t) <= 8 and t.isalnum() and t == t.upper() for t in texts)
    assert all("O" in t for t in texts if any(ch.isalpha() for ch in t))
    ref = [plates.random_text(rng) for _ in range(300)]
    o_share = lambda ts: sum(ch == "O" for t in ts for ch in t) / sum(ch.isalpha() for t in ts for ch in t)
    zero_share = lambda ts: sum(ch == "0" for t in ts for ch in t) / sum(ch.isdigit() for t in ts for ch in t)
    assert o_share(texts) > 5 * o_share(ref) and zero_share(texts) > 1.5 * zero_share(ref)
    img, label = plates.render_plate(rng, texts[0])
    assert label == texts[0] and img.ndim == 3


def test_round_texts_with_q_put_q_beside_o_and_zero() -> None:
    """`gen --round-letters QO`: every text with letters has a Q or an O, Qs far commoner than in serials
    (where they are drawn at SERIAL_LETTER_WEIGHT['Q']), and no other look-alike letter is favoured."""
    rng = np.random.default_rng(6)
    texts = [plates.round_text(rng, letters="QO") for _ in range(400)]
    assert all(set(t) & set("QO") for t in texts if any(ch.isalpha() for ch in t))
    ref = [plates.random_text(rng) for _ in range(400)]
    share = lambda ts, c: sum(ch == c for t in ts for ch in t) / sum(ch.isalpha() for t in ts for ch in t)
    assert share(texts, "Q") > 5 * share(ref, "Q") and share(texts, "O") > 5 * share(ref, "O")
    assert share(texts, "I") < 2 * share(ref, "I")


def test_gen_refuses_round_letters_that_are_not_letters(tmp_path) -> None:
    """A typo in --round-letters is named, before any shard is drawn."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "models.ocr.gen", "--out", str(tmp_path), "--shards", "1",
                          "--round-share", "0.3", "--round-letters", "q0"], capture_output=True, text=True)
    assert run.returncode == 2 and "--round-letters 'q0'" in run.stderr and not list(tmp_path.iterdir())


def test_doubled_texts_write_one_character_twice_in_a_row_and_often_an_ii() -> None:
    """Doubled shards (`gen --double-share`) teach two like glyphs side by side, II above all (the network
    read a third of the IIs wrong, most as one I): every text has a pair, stays plate-length, and render keeps it."""
    rng = np.random.default_rng(4)
    texts = [plates.double_text(rng) for _ in range(400)]
    assert all(1 <= len(t) <= 8 and t.isalnum() and t == t.upper() for t in texts)
    assert all(any(a == b for a, b in zip(t, t[1:])) for t in texts)
    assert sum("II" in t for t in texts) > 0.25 * len(texts) > sum("II" in plates.random_text(rng) for _ in range(400))
    img, label = plates.render_plate(rng, texts[0])
    assert label == texts[0] and img.ndim == 3


def test_round_texts_with_q_put_q_beside_o_and_zero() -> None:
    """`gen --round-letters QO`: every text with letters has a Q or an O, Qs far commoner than in serials
    (where they are drawn at SERIAL_LETTER_WEIGHT['Q']), and no other look-alike letter is favoured."""
    rng = np.random.default_rng(6)
    texts = [plates.round_text(rng, letters="QO") for _ in range(400)]
    assert all(set(t) & set("QO") for t in texts if any(ch.isalpha() for ch in t))
    ref = [plates.random_text(rng) for _ in range(400)]
    share = lambda ts, c: sum(ch == c for t in ts for ch in t) / sum(ch.isalpha() for t in ts for ch in t)
    assert share(texts, "Q") > 5 * share(ref, "Q") and share(texts, "O") > 5 * share(ref, "O")
    assert share(texts, "I") < 2 * share(ref, "I")


def test_gen_refuses_round_letters_that_are_not_letters(tmp_path) -> None:
    """A typo in --round-letters is named, before any shard is drawn."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "models.ocr.gen", "--out", str(tmp_path), "--shards", "1",
                          "--round-share", "0.3", "--round-letters", "q0"], capture_output=True, text=True)
    assert run.returncode == 2 and "--round-letters 'q0'" in run.stderr and not list(tmp_path.iterdir())


def test_the_us_crops_split_is_fixed_and_even_without_pytorch() -> None:
    """`models.us_fold` decides which US crops may train the OCR; benchmarks score the other half
    without importing PyTorch, so the split must not move and must not need it."""
    from models import us_fold

    assert us_fold("ca1127.png") == "val" and us_fold("ak1165.png") == "train"
    folds = [us_fold(f"xx{i}.png") for i in range(2000)]
    assert 0.45 < folds.count("val") / len(folds) < 0.55


def test_labels_found_wrong_are_put_right_for_training_and_the_benchmarks(tmp_path, monkeypatch) -> None:
    """benchmarks/labels/fixes.tsv names shared labels that name another plate: the OCR's loaders and the
    benchmarks' linked folders read the plate in the image, the shared files stay as they are."""
    import sys

    import models
    from models import fixed_plate, label_fixes

    assert label_fixes("scenes-ca")["cars2_005.jpg"] == ("2ZMF731", "7A33474")  # the shipped list
    fixes = tmp_path / "fixes.tsv"
    fixes.write_text("set\tfile\tlabel\tplate\twhy\nscenes-x\ta.jpg\tAAA111\tBBB222\tanother plate\n")
    monkeypatch.setattr(models, "LABEL_FIXES", fixes)
    assert fixed_plate("scenes-x", "a.jpg", "AAA111") == "BBB222"
    assert fixed_plate("scenes-x", "a.jpg", "CCC333") == "CCC333"  # the shared label changed since: left alone
    assert fixed_plate("scenes-y", "a.jpg", "AAA111") == "AAA111"

    src = tmp_path / "scenes-x"
    src.mkdir()
    (src / "labels.tsv").write_text("file\tx\ty\tw\th\tplate\na.jpg\t1\t2\t30\t10\tAAA111\nb.jpg\t1\t2\t30\t10\tDDD444\n")
    for f in ("a.jpg", "b.jpg"):
        (src / f).write_bytes(b"")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from eval_all import linked_subset

    out = linked_subset(src, tmp_path / "linked", "labels.tsv", lambda f: True)
    rows = (out / "labels.tsv").read_text().splitlines()
    assert rows[1].split("\t") == ["a.jpg", "1", "2", "30", "10", "BBB222"]
    assert rows[2].endswith("\tDDD444") and "AAA111" in (src / "labels.tsv").read_text()


def test_shards_without_the_optional_shares_are_the_plates_the_seed_always_drew(tmp_path) -> None:
    """`gen --lookalike-share`, `--unchecked-font-share`, `--double-share` and `--round-share` toss their coins only when asked for: a seed
    without them renders what it rendered before they existed (0.6.0's shards can be made again)."""
    from models.ocr.gen import write_shard

    write_shard(tmp_path / "s.npz", 3, seed=7)
    rng = np.random.default_rng(7)
    expected = [plates.render_plate(rng, None, night=rng.random() < 0.15)[1] for _ in range(3)]
    assert list(np.load(tmp_path / "s.npz")["texts"]) == expected
    write_shard(tmp_path / "l.npz", 3, seed=7, lookalike_share=0.5)
    assert list(np.load(tmp_path / "l.npz")["texts"]) != expected  # asked for, the coin changes the draw
    write_shard(tmp_path / "d.npz", 3, seed=7, double_share=1.0)
    doubled = list(np.load(tmp_path / "d.npz")["texts"])
    assert doubled != expected and all(any(a == b for a, b in zip(t, t[1:])) for t in doubled)
    write_shard(tmp_path / "r.npz", 3, seed=7, round_share=1.0)
    rounds = list(np.load(tmp_path / "r.npz")["texts"])
    assert rounds != expected and all("O" in t for t in rounds if any(ch.isalpha() for ch in t))


def test_export_soups_a_run_with_a_shipped_file(tmp_path, monkeypatch) -> None:
    """`--soup`: a run's checkpoints and a shipped OCR file, weights averaged, one network of the same graph
    (training only: needs PyTorch)."""
    torch = pytest.importorskip("torch")
    from models import MODELS_DIR
    from models.ocr import export
    from models.ocr.net import ARCHS
    from models.warmstart import shipped_arch

    shipped = MODELS_DIR / "plate_ocr.onnx"
    arch = shipped_arch(shipped)
    base = export.from_onnx(shipped, arch).state_dict()
    w = next(k for k in base if k.endswith("weight") and base[k].dim() == 4)  # a convolution's (batch norm is folded)
    moved = dict(base) | {w: base[w] + 0.02}
    ckpt = tmp_path / "step_1000.pt"
    torch.save({"arch": arch, "model": moved}, ckpt)
    out = tmp_path / "soup.onnx"
    monkeypatch.setattr("sys.argv", ["export", str(ckpt), str(out), "--soup", str(shipped)])
    export.main()
    got = export.from_onnx(out, arch).state_dict()
    assert torch.allclose(got[w], base[w] + 0.01, atol=1e-5)  # half way between the two members
    # a shipped file may come first (souped back toward the network it was fine-tuned from)
    monkeypatch.setattr("sys.argv", ["export", str(shipped), str(out), "--soup", str(ckpt)])
    export.main()
    assert torch.allclose(export.from_onnx(out, arch).state_dict()[w], base[w] + 0.01, atol=1e-5)
    monkeypatch.setattr("sys.argv", ["export", str(ckpt), str(out), "--soup", str(shipped), "--join", str(shipped)])
    with pytest.raises(SystemExit, match="mixture or a soup"):
        export.main()
    monkeypatch.setattr("sys.argv", ["export", str(shipped), str(out)])  # nothing to soup or join it with
    with pytest.raises(SystemExit, match="comes alone, with --soup or --join"):
        export.main()
    # a member of another architecture is refused by name, not averaged key by key (only a ctc file joins a
    # ctc-g soup, as that network with its attention off)
    torch.save({"arch": "ctc", "model": ARCHS["ctc"]().state_dict()}, tmp_path / "ctc.pt")
    export.export(ARCHS["ctc-g"](), tmp_path / "g.onnx")
    monkeypatch.setattr("sys.argv", ["export", str(tmp_path / "ctc.pt"), str(out), "--soup", str(tmp_path / "g.onnx")])
    with pytest.raises(SystemExit, match="architecture ctc-g, the first member's is ctc"):
        export.main()


def test_a_ctc_file_souped_into_a_ctc_g_run_keeps_its_attention_pattern_at_half_strength(tmp_path, monkeypatch) -> None:
    """`export RUN/step_*.pt OUT --soup ctc.onnx` with a ctc-g run: the ctc network counts as ctc-g with its
    attention off, so the soup keeps the run's attention projections, halves its output projection and
    averages every convolution (training only: needs PyTorch)."""
    torch = pytest.importorskip("torch")
    from models.ocr import export
    from models.ocr.net import ARCHS

    torch.manual_seed(1)
    ctc = _as_trained(ARCHS["ctc"]())
    export.export(ctc, tmp_path / "ctc.onnx")
    run = export.from_onnx(tmp_path / "ctc.onnx", "ctc-g")
    sd = run.state_dict()
    conv = "backbone.0.0.weight"
    sd[conv] = sd[conv] + 0.02
    sd["attend.o.weight"] = torch.randn_like(sd["attend.o.weight"]) * 0.1
    sd["attend.q.weight"] = torch.randn_like(sd["attend.q.weight"])
    torch.save({"arch": "ctc-g", "model": sd}, tmp_path / "step_1000.pt")
    out = tmp_path / "soup.onnx"
    monkeypatch.setattr("sys.argv", ["export", str(tmp_path / "step_1000.pt"), str(out), "--soup", str(tmp_path / "ctc.onnx")])
    export.main()
    got = export.from_onnx(out, "ctc-g").state_dict()
    base = export.from_onnx(tmp_path / "ctc.onnx", "ctc-g").state_dict()
    assert torch.allclose(got[conv], base[conv] + 0.01, atol=1e-5)
    assert torch.allclose(got["attend.o.weight"], sd["attend.o.weight"] / 2, atol=1e-6)
    assert torch.allclose(got["attend.q.weight"], sd["attend.q.weight"], atol=1e-6)


def test_the_glyph_probe_texts_carry_the_pair_asked_for() -> None:
    """benchmarks/glyph_check.py's texts (the OCR card's O/0, I/1 and doubled figures): each holds the pair's
    letter or digit; with `doubled`, one of them twice in a row; the same seed draws the same texts."""
    from benchmarks.glyph_check import texts

    for pair in ("O0", "I1", "B8"):
        plain = texts(np.random.default_rng(5), 200, pair)
        assert len(plain) == 200 and all(pair[0] in t or pair[1] in t for t in plain)
        doubled = texts(np.random.default_rng(5), 200, pair, doubled=True)
        assert all(pair[0] * 2 in t or pair[1] * 2 in t for t in doubled)
        assert 60 < sum(pair[0] * 2 in t for t in doubled) < 140  # letter and digit about half each
        assert all(3 <= len(t) <= 8 and t.isalnum() for t in doubled)
    assert texts(np.random.default_rng(5), 50, "I1") == texts(np.random.default_rng(5), 50, "I1")


def test_the_dealer_frame_probe_reads_the_same_texts_plain_and_framed() -> None:
    """benchmarks/dealer_frames.py compares two renderings of one list of texts: its texts depend on the seed
    alone, not on the frames (the frames' draws would otherwise change every later plate's text), and its
    small copies are as wide as a camera holds a plate."""
    from benchmarks.dealer_frames import SMALL_WIDTH, render

    big0, small0, plain = render(4, 6, 0.0)
    big1, small1, framed = render(4, 6, 1.0)
    assert plain == framed
    assert any(not np.array_equal(a, b) for a, b in zip(big0, big1))
    assert all(SMALL_WIDTH[0] <= s.shape[1] < SMALL_WIDTH[1] for s in small0 + small1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The mask's runs of inked columns, as (first, last) column pairs."""
    cols = np.flatnonzero(mask.max(axis=0) > 60)
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


def test_a_fixed_pitch_plate_gives_an_i_a_full_cell(monkeypatch) -> None:
    """US dies stand each character in a cell of one width: the I of DELIGRL has as much plate either side of
    it as its cell leaves, where a desktop font sets it against its neighbours (the gap between glyphs alone).
    The same seed draws the same plate both ways (at 0 and 1 the pitch tosses no coin)."""
    monkeypatch.setattr(plates, "STACK_SHARE", 0.0)

    def gaps(share: float, seed: int) -> tuple[int, int, int] | None:
        mask, _ = plates._text_mask(np.random.default_rng(seed), "0I0", 96, 10_000, stack_share=0.0,
                                    pitch_share=share)
        runs = _runs(mask)
        if len(runs) != 3:  # a separator or side code drawn in: not this test's plate
            return None
        (a0, a1), (b0, b1), (c0, _) = runs
        return b0 - a1, c0 - b1, a1 - a0 + 1

    compared = opened = 0
    for seed in range(40):
        set_, pitched = gaps(0.0, seed), gaps(1.0, seed)
        if set_ is None or pitched is None:
            continue
        compared += 1
        assert abs(pitched[0] - pitched[1]) <= 2  # centred in its cell
        assert pitched[0] >= set_[0] - 1 and pitched[1] >= set_[1] - 1
        opened += pitched[0] - set_[0] > 0.15 * pitched[2]
    assert compared >= 25 and opened >= 0.75 * compared


def test_die_i1_plates_draw_1_as_a_bare_bar_and_i_with_serifs_as_us_dies_do() -> None:
    """Real US dies draw I with slab serifs (none of us-crops-dev's 22 Is is a bare bar) and many draw 1 as
    a bare bar; the generator's fonts mostly do the opposite. Asked for, the plate's 1s and Is are drawn the
    dies' way; not asked for, the seed's plate is the one it always was."""
    face = plates._fonts()[0]
    one, i = plates._die_one(face, 0) > 127, plates._die_i(face, 0) > 127
    rows = one.sum(axis=1)
    assert rows.min() == rows.max() > 0                       # the same ink in every row: a bare bar
    ink = i.sum(axis=1)
    assert ink[0] >= 3 * ink[48] and ink[-1] >= 3 * ink[48]   # serifs three stems wide top and bottom
    assert ink[48] == rows[0]                                 # on the font's own stem

    def mask(share: float, seed: int) -> np.ndarray:
        m, _ = plates._text_mask(np.random.default_rng(seed), "1I", 96, 10_000, stack_share=0.0,
                                 die_i1_share=share)
        return m

    changed = 0
    for seed in range(10):
        plain, die = mask(0.0, seed), mask(1.0, seed)
        changed += plain.shape != die.shape or not np.array_equal(plain, die)
        runs = _runs(die)
        assert len(runs) >= 2
    assert changed >= 8
    # a plate with no 1 or I tosses no coin: the seed draws the same plate
    a, _ = plates.render_plate(np.random.default_rng(5), "AB234", die_i1_share=1.0)
    b, _ = plates.render_plate(np.random.default_rng(5), "AB234")
    assert np.array_equal(a, b)


def test_die_i_alone_serifs_the_i_leaves_the_1_to_the_font_and_at_one_draws_the_seeds_plate_again() -> None:
    """The simulated road's dies (`[camera.simulated] die_i`): every I serifed as real US dies draw it, the 1
    the font's, and at share 1 no coin is tossed, so the road's vehicles and plates stay those of every
    earlier benchmark but for their Is."""
    bare_fonts = 0
    for seed in range(12):
        a, _ = plates._text_mask(np.random.default_rng(seed), "I", 96, 10_000, stack_share=0.0, die_i_share=1.0)
        b, _ = plates._text_mask(np.random.default_rng(seed), "I", 96, 10_000, stack_share=0.0)
        ink = (a > 127).sum(axis=1)
        assert ink[0] >= 2.5 * ink[48] and ink[-1] >= 2.5 * ink[48], seed   # serifs on the die's I
        bare = (b > 127).sum(axis=1)
        bare_fonts += bool(bare[0] < 2 * bare[48])                              # the font's I, mostly bare
        one_a, _ = plates._text_mask(np.random.default_rng(seed), "1", 96, 10_000, stack_share=0.0,
                                     die_i_share=1.0)
        one_b, _ = plates._text_mask(np.random.default_rng(seed), "1", 96, 10_000, stack_share=0.0)
        assert np.array_equal(one_a, one_b)                                     # the 1 untouched
    assert bare_fonts >= 6
    # the same seed draws the same text and, on a plate with no I, the same pixels
    same = 0
    for seed in range(40):
        fa, ta = plates.render_plate(np.random.default_rng(seed), None, degrade=False, die_i_share=1.0)
        fb, tb = plates.render_plate(np.random.default_rng(seed), None, degrade=False)
        assert ta == tb
        if "I" not in ta:
            assert np.array_equal(fa, fb)
            same += 1
        else:
            assert not np.array_equal(fa, fb)
    assert same >= 30
