"""Write synthetic OCR training shards (grey OCR_H x OCR_W crops + labels) to disk.

Rendering costs about 10 ms a plate, more than a training step per sample, so
plates are rendered once into shards that training reads and re-augments;
several generators (different seeds) can run beside training.

    python -m models.ocr.gen --out models/cache/ocr_synth --shards 40 --per-shard 4000 --seed 1
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from firmware.recognition.ocr import OCR_H, OCR_W, SLOTS, encode
from models.ocr import stored
from models.synth.plates import LETTERS, STACK_SHARE, double_text, lookalike_text, render_plate, round_text


def write_shard(path: Path, n: int, seed: int, night_share: float = 0.15,
                stack_share: float = STACK_SHARE, lookalike_share: float = 0.0,
                unchecked_font_share: float = 0.0, die_font_share: float = 0.0, double_share: float = 0.0,
                round_share: float = 0.0, dealer_share: float = 0.0, pitch_share: float = 0.0,
                die_i1_share: float = 0.0, round_letters: str = "O") -> None:
    rng = np.random.default_rng(seed)
    images = np.empty((n, OCR_H, OCR_W), np.uint8)
    labels = np.empty((n, SLOTS), np.int64)
    texts = []
    for i in tqdm(range(n), desc=path.name, leave=False, mininterval=5):
        # each share's coin is tossed only when that share is asked for, so that a seed's shards stay
        # what they were before the option existed (0.6.0's seeds 10 and 11 among them)
        text = lookalike_text(rng) if lookalike_share and rng.random() < lookalike_share else None
        if text is None and double_share and rng.random() < double_share:
            text = double_text(rng)
        if text is None and round_share and rng.random() < round_share:
            text = round_text(rng, letters=round_letters)
        font_check = not (unchecked_font_share and rng.random() < unchecked_font_share)
        img, text = render_plate(rng, text, night=rng.random() < night_share, stack_share=stack_share,
                                 font_check=font_check, die_font_share=die_font_share,
                                 dealer_share=dealer_share, pitch_share=pitch_share,
                                 die_i1_share=die_i1_share)
        images[i] = stored(img)
        labels[i] = encode(text)
        texts.append(text)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels, texts=np.array(texts))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("models/cache/ocr_synth"))
    ap.add_argument("--shards", type=int, default=40)
    ap.add_argument("--per-shard", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stack-share", type=float, default=STACK_SHARE,
                    help="share of plates with two small characters stacked inside the registration "
                         f"(default {STACK_SHARE}; a seed of its own with more teaches them)")
    ap.add_argument("--lookalike-share", type=float, default=0.0,
                    help="share of plates whose texts put look-alike letters and digits side by side "
                         "(O/Q/D and 0, I/T and 1, B and 8, ...: synth.plates.lookalike_text)")
    ap.add_argument("--unchecked-font-share", type=float, default=0.0,
                    help="share of plates drawn in any font, also one whose O, Q, I or B looks like its "
                         "digit (synth.plates.ambiguous_letters), as 0.5.0 was trained: it keeps the OCR "
                         "unsure of such glyphs on real plates, where the US format prior decides")
    ap.add_argument("--die-font-share", type=float, default=0.0,
                    help="share of plates drawn in a plate-die lookalike font (FHWA highway gothic series, "
                         "DIN, routed letters: synth.plates.DIE_FONT_FILES)")
    ap.add_argument("--double-share", type=float, default=0.0,
                    help="share of plates with one character written twice in a row, often II "
                         "(synth.plates.double_text: two thin bars side by side need a blank CTC column)")
    ap.add_argument("--round-share", type=float, default=0.0,
                    help="share of plates whose texts carry O and 0 together (synth.plates.round_text: "
                         "an O told from a 0 by its width against the plate's digits)")
    ap.add_argument("--round-letters", default="O",
                    help="the round letters of --round-share texts (QO: a Q beside an O and a 0, told apart "
                         "by its tail)")
    ap.add_argument("--dealer-share", type=float, default=0.0,
                    help="share of plates in a dealer's frame printed in bold above and below the text "
                         "(synth.plates._dealer_frame: frame text read as the registration)")
    ap.add_argument("--pitch-share", type=float, default=0.0,
                    help="share of plates set at a fixed pitch as US dies cut them, each glyph centred in a "
                         "cell as wide as the font's 0 (synth.plates._pitch; 0.7 read fewer real "
                         "plates in session 33)")
    ap.add_argument("--die-i1-share", type=float, default=0.0,
                    help="share of plates holding a 1 or an I on which 1 is a bare bar and I has slab serifs, "
                         "as US dies draw them (synth.plates._die_one, _die_i; the fonts mostly flag their 1 "
                         "and draw I bare)")
    args = ap.parse_args()
    if not args.round_letters or set(args.round_letters) - set(LETTERS):
        ap.error(f"--round-letters {args.round_letters!r}: expected capital letters A-Z, such as QO")
    args.out.mkdir(parents=True, exist_ok=True)
    for s in tqdm(range(args.shards), desc="shards"):
        path = args.out / f"synth_{args.seed:03d}_{s:04d}.npz"
        if not path.exists():  # resumable: existing shards are kept
            write_shard(path, args.per_shard, seed=args.seed * 100_000 + s, stack_share=args.stack_share,
                        lookalike_share=args.lookalike_share, unchecked_font_share=args.unchecked_font_share,
                        die_font_share=args.die_font_share, double_share=args.double_share,
                        round_share=args.round_share, dealer_share=args.dealer_share,
                        pitch_share=args.pitch_share, die_i1_share=args.die_i1_share,
                        round_letters=args.round_letters)


if __name__ == "__main__":
    main()
