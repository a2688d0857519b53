"""Breast outline of the CC model: an arc of a rotated ellipse closed by the chest-wall chord.

In the publication's frame ``x(t) = X0 + a cos t cos φ + b sin t sin φ`` and
``y(t) = Y0 − a cos t sin φ + b sin t cos φ`` (the MATLAB drawer's formulas with ``-phi``). The arc
starts at ``t = Alpha_e`` and ends where x returns to the same vertical (the chest wall); it passes
through the ellipse's point farthest from the chest wall, and the nipple sits at its middle angle.
"""

from __future__ import annotations

import numpy as np

from mammosynth.phantom.params import Outline


def ellipse_point(o: Outline, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    c, s = np.cos(o.phi), np.sin(o.phi)
    x = o.X0 + o.a * np.cos(t) * c + o.b * np.sin(t) * s
    y = o.Y0 - o.a * np.cos(t) * s + o.b * np.sin(t) * c
    return x, y


def arc_range(o: Outline) -> tuple[float, float]:
    """(t_start, t_end) of the arc: symmetric about the angle of the ellipse's leftmost point, ending
    on the vertical through ``t = Alpha_e``.

    Example:
        >>> t0, t1 = arc_range(Outline(a=0.5, b=0.4, phi=0.0, X0=1.0, Y0=0.5, Alpha_e=np.pi / 2))
        >>> round(t0, 6), round(t1, 6)
        (1.570796, 4.712389)
    """
    delta = np.arctan2(o.b * np.sin(o.phi), o.a * np.cos(o.phi))  # x(t) − X0 = R cos(t − delta)
    t_mid = delta + np.pi
    w = abs((o.Alpha_e - t_mid + np.pi) % (2 * np.pi) - np.pi)
    w = min(max(w, 1e-3), np.pi)
    return float(t_mid - w), float(t_mid + w)


def outline_polygon(o: Outline, n: int = 256) -> tuple[np.ndarray, float]:
    """Arc points (n, 2) in the standard frame (x = distance from the chest wall, y down), and the
    chest-wall x of the publication frame."""
    t0, t1 = arc_range(o)
    x, y = ellipse_point(o, np.linspace(t0, t1, n))
    x_wall = float(x[0])
    return np.stack([x_wall - x, y], axis=1), x_wall


def nipple_point(o: Outline, position: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Nipple location (standard frame) and the outward unit normal there; ``position`` in −1…1."""
    t0, t1 = arc_range(o)
    t = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * float(np.clip(position, -1, 1)) * 0.9
    x_wall = float(ellipse_point(o, t0)[0])
    x, y = ellipse_point(o, t)
    eps = 1e-4
    x2, y2 = ellipse_point(o, t + eps)
    tangent = np.array([-(x2 - x), y2 - y])  # x is mirrored in the standard frame
    normal = np.array([tangent[1], -tangent[0]])
    normal /= np.linalg.norm(normal) + 1e-12
    point = np.array([x_wall - x, y])
    centre = np.array([x_wall - o.X0, o.Y0])
    if np.dot(normal, point - centre) < 0:  # outward: away from the ellipse centre
        normal = -normal
    return point, normal
