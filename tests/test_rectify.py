"""Corner finding for perspective-corrected plate crops."""

import cv2
import numpy as np

from firmware.recognition.rectify import find_corners, order_corners


def test_finds_a_tilted_plate_inside_its_box():
    crop = np.full((120, 260, 3), 40, np.uint8)
    quad = np.float32([[22, 18], [236, 30], [230, 104], [18, 96]])
    cv2.fillConvexPoly(crop, quad.astype(np.int32), (235, 235, 235))
    cv2.putText(crop, "7ABC123", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 4)
    got = find_corners(crop)
    assert got is not None
    assert np.abs(got - quad).max() < 6


def test_gives_up_without_a_plate_shaped_contour():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (80, 160, 3), dtype=np.uint8)
    assert find_corners(noise) is None
    assert find_corners(np.zeros((10, 20), np.uint8)) is None


def test_order_corners_is_clockwise_from_top_left():
    pts = np.float32([[100, 50], [0, 0], [0, 50], [100, 0]])
    assert order_corners(pts).tolist() == [[0, 0], [100, 0], [100, 50], [0, 50]]
