"""Burned-in labels, lead markers and tape that the breast mask caught: found and cut out of it.

Film scans carry patient labels (name, ID, birth date, hospital), view markers ("RMLO", "M") and tape.
Those apart from the breast are never in the mask (it keeps the largest component); the ones that touch
the breast are. Two kinds of piece are cut (at a working size of 256 px, chest wall on the left):

- **bright pieces facing the air**: at or above the level of the breast's densest tissue, with much of their
  edge next to the background. Tissue that bright lies inside the breast behind a margin of dim subcutaneous
  fat (the skin line falls off with thickness); the pectoral muscle lies against the chest wall and the
  border. Blocks (paper: thick and convex, at least ``MIN_CONTACT`` of the edge on the air) and compact marks
  (letters: not lines, at least ``MARK_CONTACT``) are taken apart by an opening; a digital image's bright skin
  rim is a thin curved line and is neither;
- **rectangles hanging over the air** along the top or bottom border (tape, of any brightness);
- **label patches on the skin line**: a rectangle standing out of the smooth outline into the air, away from
  the borders, carrying bright marks (mdb274's "0 5": digits on a grey patch that overlaps the skin). The
  outline's own bumps (the nipple, a corner) are round or crescents, not rectangles, and carry no marks.

Their holes (a label's dark text) and a margin of ``MARGIN_PX`` (their blur) go with them, and any part of the
mask cut off from the breast by the removal too.

Written here because no kept library ships it; each step is a SciPy/scikit-image primitive. On the shared
images (mini-MIAS, DDSM films; cc-cesm digital, which carry none) see ``scripts/burned_in_check.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

from mammosynth.preprocess.morphology import close_disk, dilate_disk, open_disk
from mammosynth.preprocess.resize import resize_image, resize_mask

WORK_SIZE = 256
MIN_CONTACT = 0.35  # share of a piece's edge (off the image border) that faces the background
BRIGHT = 1.0  # a label's level: background 0, the 99th percentile of the breast's core 1
CORE_DEPTH = 0.35  # the breast's core, as a share of its deepest pixel's distance to the background
MAX_AREA = 0.25  # a label covers at most this share of the breast mask
CLOSE_PX = 3  # dark text narrower than twice this, on a label, is closed over
CONTACT_PX = 3  # at the working size: how near the background a piece's edge counts as facing it
MIN_PX = 12  # smaller bright specks are noise or calcifications
BLOCK_PX = 2.5  # a paper label's half-thickness at the working size, at least (a skin rim's is 1–2)
BLOCK_SOLIDITY = 0.75  # a paper label fills its convex hull; a bright skin rim is a curved band
MARK_ECCENTRICITY = 0.95  # a letter or marker is compact; a skin rim fragment is a line (0.97–1.0)
MARK_SHARE = 0.08  # a letter or marker spans at most this share of the working size
MARK_CONTACT = 0.7  # share of a letter's edge that faces the background
AIR_LEVEL = 0.05  # inside the mask, pixels this near the background's level are air
AIR_PX = 2  # background narrower than twice this (a film's dark edge line) is not air around the breast
WALL_PERCENTILE = 10  # of the rows' first breast columns: where the chest wall is
BAND_SHARE = 0.12  # the band along the top and bottom borders where tape and labels overhang the air
OVERHANG_EXTENT = 0.7  # share of its bounding box an overhanging piece fills (a rectangle's is 1, a wedge's 0.5)
GAP_PX = 3  # rows of air beyond the band that make its pixels an overhang
MARGIN_PX = 2  # removed around each label at the working size (its blur and anti-aliasing)
PATCH_SHARE = 0.06  # a skin-line label patch is narrower than twice this share of the working size
PATCH_EXTENT = 0.5  # share of its box a patch fills (a rectangle cut by a curve; crescents 0.3–0.4)
PATCH_MARKS = 0.05  # share of a skin-line patch at a label's brightness (its digits or letters), at least


def burned_in_mask(pixels: np.ndarray, breast: np.ndarray, chest_wall: str = "left") -> np.ndarray:
    """Pixels of ``breast`` (the mask of :func:`~mammosynth.preprocess.segment.breast_mask`) that are
    burned-in labels, markers or tape, or cut off from the breast once those go; same shape, boolean.
    ``chest_wall`` is the side the breast lies against (``"left"`` or ``"right"``).

    Example:
        >>> image = np.zeros((200, 160), np.float32)
        >>> yy, xx = np.mgrid[:200, :160]
        >>> image[((yy - 100) / 90) ** 2 + (xx / 100) ** 2 < 1] = 0.5
        >>> image[10:40, 80:150] = 1.0  # a paper label touching the breast
        >>> breast = image > 0.1
        >>> label = burned_in_mask(image, breast)
        >>> bool(label[25, 120]), bool(label[100, 30])
        (True, False)
    """
    if chest_wall not in ("left", "right"):
        raise ValueError("chest_wall must be 'left' or 'right'")
    if not breast.any():
        return np.zeros_like(breast, dtype=bool)
    height, width = breast.shape
    scale = WORK_SIZE / max(height, width)
    small_w, small_h = max(8, round(width * scale)), max(8, round(height * scale))
    small = resize_image(np.asarray(pixels, np.float32), small_w, small_h)
    mask = resize_mask(breast, small_w, small_h)
    if chest_wall == "right":
        small, mask = small[:, ::-1], mask[:, ::-1]
    removed = _labels(small, mask)
    if chest_wall == "right":
        removed = removed[:, ::-1]
    if not removed.any():
        return np.zeros_like(breast, dtype=bool)
    return resize_mask(removed, width, height) & breast


def _labels(small: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The label pixels of ``mask`` at the working size, chest wall on the left."""
    if not mask.any() or mask.all():
        return np.zeros_like(mask)
    level = _level(small, mask)
    air = _air(mask, level)
    near_air = _near(air)
    labels = _overhangs(mask, air) | _skin_patches(mask, near_air, level)
    bright = mask & (level >= BRIGHT)
    # a label's dark text splits its paper into blocks: joined again (padded so the border does not erode)
    bright = close_disk(np.pad(bright, CLOSE_PX, mode="edge"), CLOSE_PX)
    bright = bright[CLOSE_PX:-CLOSE_PX, CLOSE_PX:-CLOSE_PX] & mask
    near_background = near_air & mask
    border = np.zeros_like(mask)
    border[:CONTACT_PX], border[-CONTACT_PX:], border[:, :CONTACT_PX], border[:, -CONTACT_PX:] = True, True, True, True
    radius = max(2, round(0.02 * max(mask.shape)))
    thick = open_disk(bright, radius)
    for pieces in (thick, bright & ~thick):
        components = measure.label(pieces, connectivity=2)
        for region in measure.regionprops(components):
            if not MIN_PX <= region.area <= MAX_AREA * mask.sum():
                continue  # a speck (noise, a calcification) or too large to be a label
            # in its box and a 1 px ring (nothing of the piece lies beyond it): the same holes, edge and depth
            top, left, bottom, right = region.bbox
            box = slice(max(0, top - 1), bottom + 1), slice(max(0, left - 1), right + 1)
            piece = ndi.binary_fill_holes(components[box] == region.label)  # a paper label's dark text
            if _label_like(piece, region, near_background[box], border[box], max(mask.shape)):
                labels[box] |= piece
    if not labels.any():
        return labels
    labels = dilate_disk(ndi.binary_fill_holes(labels), MARGIN_PX) & mask
    kept = measure.label(mask & ~labels, connectivity=1)
    if kept.max() == 0:
        return np.zeros_like(mask)  # nothing would be left: not a label on a breast
    areas = np.bincount(kept.ravel())
    areas[0] = 0
    return mask & (kept != int(np.argmax(areas)))


def _label_like(piece: np.ndarray, region, near_background: np.ndarray, border: np.ndarray, size: int) -> bool:
    """A bright piece is a label when it faces the background over much of its edge and is either a block
    (paper: thicker than the skin and convex) or a compact mark (a letter, not a line). A processed digital
    image's bright skin rim is a thin curved line along the outline that faces the background on one side.
    ``piece``, ``near_background`` and ``border`` are cut to the piece's box with a ring of 1 px; ``size`` is
    the working image's longer side."""
    edge = piece & ~ndi.binary_erosion(piece, border_value=1) & ~border
    if not edge.any():
        return False
    contact = float((edge & near_background).sum() / edge.sum())
    thickness = float(ndi.distance_transform_edt(np.pad(piece, 1)).max())
    if thickness >= BLOCK_PX:
        filled = measure.regionprops(piece.astype(np.uint8))[0]
        return contact >= MIN_CONTACT and filled.solidity >= BLOCK_SOLIDITY
    height, width = region.bbox[2] - region.bbox[0], region.bbox[3] - region.bbox[1]
    compact = region.eccentricity < MARK_ECCENTRICITY and max(height, width) <= MARK_SHARE * size
    return compact and contact >= MARK_CONTACT


def _air(mask: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The background around the breast: outside the mask, or at the background's level (below
    ``AIR_LEVEL``) inside it (the mask's closing reaches over the air between a label's letters); not the
    film's margin beside the chest wall (left of the breast's chest-wall edge, the ``WALL_PERCENTILE`` of its
    rows' first columns) and not a line narrower than ``2 * AIR_PX`` (a film's dark edge)."""
    rows = mask.any(axis=1)
    wall = int(np.percentile(mask.argmax(axis=1)[rows], WALL_PERCENTILE)) if rows.any() else 0
    air = ~mask | (level < AIR_LEVEL)
    air[:, :wall] = False
    return open_disk(air, AIR_PX)


def _near(air: np.ndarray) -> np.ndarray:
    """Pixels within ``CONTACT_PX`` of ``air`` (the image's border is not air)."""
    return dilate_disk(air, CONTACT_PX)


def _overhangs(mask: np.ndarray, air: np.ndarray) -> np.ndarray:
    """Tape and labels along the top or bottom border, whatever their brightness: the mask's pixels in the
    border's band (``BAND_SHARE`` of the height) over columns where air follows the band (``GAP_PX`` rows).
    Tape and labels are rectangles there (filling ``OVERHANG_EXTENT`` of their box, at least); where a breast
    runs off the border with air beyond (an MLO view's axilla, curving in below it) it is a tapering wedge."""
    band = max(2, round(BAND_SHARE * mask.shape[0]))
    found = np.zeros_like(mask)
    for rows in (slice(None), slice(None, None, -1)):  # the top border, then the bottom one
        m, a, f = mask[rows], air[rows], found[rows]
        over_air = a[band : band + GAP_PX].all(axis=0)
        f[:band] |= m[:band] & ~a[:band] & over_air[None, :]
    pieces = measure.label(found, connectivity=2)
    keep = np.zeros(pieces.max() + 1, bool)
    for region in measure.regionprops(pieces):
        top, _, bottom, _ = region.bbox
        at_border = top == 0 or bottom == mask.shape[0]
        keep[region.label] = region.area >= MIN_PX and at_border and region.extent >= OVERHANG_EXTENT
    keep[0] = False
    return keep[pieces]


def _skin_patches(mask: np.ndarray, near_air: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Label patches standing out of the skin line: what an opening of the mask (a disk of ``PATCH_SHARE``
    of the working size) takes off, in pieces no longer than a mark (``MARK_SHARE``) that fill ``PATCH_EXTENT``
    of their box, face the air (``near_air``) over ``MIN_CONTACT`` of their edge, keep off the image's border
    and are ``PATCH_MARKS`` bright marks."""
    radius = max(3, round(PATCH_SHARE * max(mask.shape)))
    padded = np.pad(mask, radius, mode="edge")
    smooth = open_disk(padded, radius)[radius:-radius, radius:-radius]
    pieces = measure.label(mask & ~smooth, connectivity=1)
    found = np.zeros_like(mask)
    height, width = mask.shape
    for region in measure.regionprops(pieces):
        top, left, bottom, right = region.bbox
        if region.area < MIN_PX or top == 0 or left == 0 or bottom == height or right == width:
            continue
        if region.extent < PATCH_EXTENT or max(bottom - top, right - left) > MARK_SHARE * max(height, width):
            continue  # a crescent shaved off a curve; a bulge of bright skin at the nipple is larger
        piece = pieces == region.label
        edge = piece & ~ndi.binary_erosion(piece)
        contact = float((edge & near_air).sum() / max(1, edge.sum()))
        marks = float((level[piece] >= BRIGHT).mean())
        if contact >= MIN_CONTACT and marks >= PATCH_MARKS:
            found |= piece | _marks_near(piece, mask & (level >= BRIGHT), radius)
    return found


def _marks_near(piece: np.ndarray, bright: np.ndarray, radius: int) -> np.ndarray:
    """The bright marks (the other digits of a label: each no longer than ``MARK_SHARE``) within ``radius`` of
    a skin-line patch, where the patch overlaps the breast and the opening left them in the mask."""
    near = dilate_disk(piece, radius)
    marks = measure.label(bright, connectivity=2)
    out = np.zeros_like(piece)
    limit = MARK_SHARE * max(piece.shape)
    for region in measure.regionprops(marks):
        top, left, bottom, right = region.bbox
        mark = marks == region.label
        if max(bottom - top, right - left) <= limit and (mark & near).any():
            out |= ndi.binary_fill_holes(mark)
    return out


def _level(small: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``small`` with the background's median at 0 and the 99th percentile of the breast's core at 1: its
    pixels deeper than ``CORE_DEPTH`` of the deepest (a label, however large, is shallow: the background is
    never farther than its own height)."""
    background = float(np.median(small[~mask]))
    depth = ndi.distance_transform_edt(np.pad(mask, 1, mode="edge"))[1:-1, 1:-1]
    core = mask & (depth > CORE_DEPTH * depth.max())
    reference = small[core] if core.sum() >= 50 else small[mask]
    top = float(np.percentile(reference, 99))
    return (small - background) / max(top - background, 1e-6)
