"""Find a plate's four corners inside its detection box, for a perspective-corrected crop.

The detector gives an axis-aligned box; a plate seen from the side of the road
is a trapezoid in it, and the OCR reads a squared-up plate better. The plate's
rim (or the edge between plate and car) is usually the strongest closed
contour around the characters: take the largest convex quadrilateral that
covers most of the box and is plate-shaped, else give up (the caller keeps the
plain box crop).
"""

from __future__ import annotations

import cv2
import numpy as np


def order_corners(pts: np.ndarray) -> np.ndarray:
    """4x2 points -> clockwise from top-left."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    s = pts.sum(1)
    d = np.diff(pts, axis=1).ravel()
    return np.float32([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


def find_corners(crop: np.ndarray, min_cover: float = 0.45) -> np.ndarray | None:
    """Corners (4x2, crop pixels, clockwise from top-left) of the plate in `crop`, or None."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = grey.shape
    if h < 16 or w < 32:
        return None
    blur = cv2.GaussianBlur(grey, (3, 3), 0)
    edges = cv2.Canny(blur, 40, 120)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    best, best_area = None, min_cover * h * w
    for c in contours:
        hull = cv2.convexHull(c)
        area = cv2.contourArea(hull)
        if area < best_area or area > 0.95 * h * w:  # the whole box is no plate outline
            continue
        quad = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
        if len(quad) != 4:
            continue
        q = order_corners(quad)
        top, bottom = np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3])
        left, right = np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1])
        aspect = (top + bottom) / max(1.0, left + right)
        if not 1.2 <= aspect <= 6.0 or min(top, bottom) < 0.6 * max(top, bottom):
            continue
        best, best_area = q, area
    return best
