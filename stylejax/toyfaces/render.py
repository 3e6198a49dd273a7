"""Vectorised, supersampled rendering of aligned cartoon faces with per-pixel region maps.

Every shape is an implicit test on a coordinate grid that separates into x and y parts
(ellipses, bands, parabola-bounded strokes), so it costs one broadcast comparison over
the shape's bounding window for the whole batch at once. Shapes are painted back to front
into a map of material ids at k x the output resolution; one bincount then gives, per
output pixel, how many sub-pixels each material covers, from which both the box-filtered
colour and the majority region follow.
"""

import numpy as np

from stylejax.toyfaces.attributes import REGIONS, sample_attributes

# Materials a sub-pixel can show; MATERIAL_REGION gives the REGIONS id of each.
BACKGROUND, SKIN, HAIR, LENS, EYE_WHITE, IRIS, PUPIL, FRAME, MOUTH = range(9)
MATERIAL_REGION = np.array([0, 1, 2, 3, 3, 3, 3, 3, 4])

# Face geometry in face units: image coordinates span [-1, 1] (x right, y down) and are
# shifted by (face_x, face_y) and divided by face_scale to get face coordinates.
FACE_HALF_HEIGHT = 0.62
FACE_HALF_WIDTH = 0.5  # times face_width
HAIR_MARGIN = 0.07  # hair reaches this far beyond the face sides and top
EYE_X, EYE_Y = 0.22, -0.06
LENS_HALF = (0.195, 0.17)  # outer half axes of a glasses lens
FRAME_WIDTH = 0.06
MOUTH_Y, MOUTH_HALF_WIDTH = 0.33, 0.2
NECK_HALF_WIDTH, NECK_TOP = 0.16, 0.45
EMPTY = -np.inf  # upper bound on a row that a shape misses: below every distance
CHUNK_SUBPIXELS = 2**21  # sub-pixels rasterised at once; measured fastest on 2 CPU cores

# Colour anchors, interpolated by the continuous attributes.
SKIN_ANCHORS = np.array([[0.99, 0.87, 0.76], [0.86, 0.64, 0.47], [0.48, 0.31, 0.20]])
HAIR_ANCHORS = np.array([[0.96, 0.82, 0.45], [0.72, 0.36, 0.14], [0.38, 0.22, 0.11],
                         [0.08, 0.06, 0.06]])
FIXED_COLOURS = {LENS: (0.80, 0.88, 0.95), EYE_WHITE: (0.97, 0.97, 0.97),
                 PUPIL: (0.04, 0.04, 0.05), FRAME: (0.10, 0.10, 0.13), MOUTH: (0.5, 0.06, 0.12)}


def _hsv_to_rgb(hue, saturation, value):
    """HSV -> RGB for hue [n] in turns and scalar saturation/value; returns [n, 3]."""
    k = (np.array([5.0, 3.0, 1.0]) + 6.0 * hue[:, None]) % 6.0
    return value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _interpolate(anchors, t):
    """Piecewise-linear path through anchors [K, 3] at t [n] in [0, 1]; returns [n, 3]."""
    grid = np.linspace(0.0, 1.0, len(anchors))
    return np.stack([np.interp(t, grid, anchors[:, c]) for c in range(3)], axis=1)


def _palette(attrs):
    """Colour of every material per face, float32 [n, len(MATERIAL_REGION), 3] in [0, 1]."""
    n = len(attrs['smile'])
    palette = np.zeros((n, len(MATERIAL_REGION), 3))
    # Two disjoint hue arcs keep the warm/cool label unambiguous: warm spans pink..yellow,
    # cool spans cyan..violet; the position inside each arc is continuous.
    b = attrs['background'].astype(np.float64)
    hue = np.where(b < 0.5, -0.11 + 0.28 * (2 * b), 0.47 + 0.28 * (2 * b - 1)) % 1.0
    palette[:, BACKGROUND] = _hsv_to_rgb(hue, 0.45, 0.85)
    palette[:, SKIN] = _interpolate(SKIN_ANCHORS, attrs['skin_tone'])
    palette[:, HAIR] = _interpolate(HAIR_ANCHORS, attrs['hair_color'])
    palette[:, IRIS] = _hsv_to_rgb(attrs['iris_hue'].astype(np.float64), 0.65, 0.6)
    for material, colour in FIXED_COLOURS.items():
        palette[:, material] = colour
    return palette.astype(np.float32)


def _ellipse_half_width(Y, y0, ax, ay):
    """Half-width per row of axis-aligned ellipses: Y [n, H], params broadcastable to
    [n, 1]; returns [n, H], EMPTY on rows the ellipse misses."""
    t = 1.0 - ((Y - y0) / ay) ** 2
    return np.where(t >= 0.0, ax * np.sqrt(np.maximum(t, 0.0)), EMPTY)


def _paint(ids, material, dist, hi, lo=None):
    """Sets ids [n, A, B] to material where lo < dist <= hi, for a per-column distance
    dist [n, B] and per-row bounds lo, hi [n, A] (lo None: no lower bound).

    Only the bounding window of the shape over the batch is tested: small parts (eyes,
    mouth, glasses) then cost a fraction of a full-image test.
    """
    low = np.full_like(hi, EMPTY) if lo is None else lo
    d_min, d_max = dist.min(1, keepdims=True), dist.max(1, keepdims=True)
    rows = np.flatnonzero(((hi > low) & (hi >= d_min) & (low < d_max)).any(0))
    if rows.size == 0:
        return
    r = slice(rows[0], rows[-1] + 1)
    in_range = (dist > low[:, r].min(1, keepdims=True)) & (dist <= hi[:, r].max(1, keepdims=True))
    cols = np.flatnonzero(in_range.any(0))
    c = slice(cols[0], cols[-1] + 1)
    inside = dist[:, None, c] <= hi[:, r, None]
    if lo is not None:
        inside &= dist[:, None, c] > lo[:, r, None]
    np.copyto(ids[:, r, c], np.uint8(material), where=inside)


def _rasterize(attrs, size):
    """Material ids uint8 [n, size, size] from pixel-centre tests, painted back to front.

    Every shape is a set of per-row intervals of a per-column distance (|x| for centred
    shapes, ||x| - EYE_X| for the mirrored eyes), so tests separate into x and y parts.
    """
    column = {key: np.asarray(value, np.float32)[:, None] for key, value in attrs.items()}
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    X = (grid - column['face_x']) / column['face_scale']  # [n, W] face coordinates
    Y = (grid - column['face_y']) / column['face_scale']  # [n, H]
    absX = np.abs(X)
    eye_dist = np.abs(absX - EYE_X)  # eyes and glasses are mirror images: one test draws both
    ids = np.zeros((len(X), size, size), np.uint8)

    face_ax = FACE_HALF_WIDTH * column['face_width']
    hair_ax = face_ax + HAIR_MARGIN
    hair_cy = -0.1
    hair_ay = FACE_HALF_HEIGHT + HAIR_MARGIN + hair_cy
    hair_ellipse = _ellipse_half_width(Y, hair_cy, hair_ax, hair_ay)
    # Back hair: the hair ellipse plus straight sides from its widest row down, cut at
    # hair_end (just above the eyes when short, past the chin when long) along a parabola
    # y = hair_end - 0.15 (x / hair_ax)^2 so the outer strands end higher (rounded tips).
    hair_end = -0.25 + 1.3 * column['hair_length']
    sides = np.where(Y >= hair_cy, hair_ax, EMPTY)
    above_end = np.where(Y < hair_end, hair_ax * np.sqrt(np.maximum(hair_end - Y, 0) / 0.15),
                         EMPTY)
    _paint(ids, HAIR, absX, np.minimum(above_end, np.maximum(sides, hair_ellipse)))

    _paint(ids, SKIN, absX, np.where(Y >= NECK_TOP, NECK_HALF_WIDTH, EMPTY))
    _paint(ids, SKIN, absX, _ellipse_half_width(Y, 0.0, face_ax, FACE_HALF_HEIGHT))

    # Fringe: the hair ellipse above the hairline y = -0.32 + 0.12 (x / face_ax)^2, which
    # dips towards the temples; below it lies |x| <= face_ax sqrt((y + 0.32) / 0.12).
    below_hairline = np.where(Y >= -0.32, face_ax * np.sqrt(np.maximum(Y + 0.32, 0) / 0.12),
                              EMPTY)
    _paint(ids, HAIR, absX, hair_ellipse, lo=below_hairline)

    # Glasses: opaque pale lenses (so no skin shows through, which would put skin-coloured
    # pixels in the eyes region), a frame ring around each eye, a bridge between them and
    # arms out to the face edge. The eyes are painted over the lenses.
    lx, ly = LENS_HALF
    glasses = column['eyeglasses'].astype(bool)
    inner = _ellipse_half_width(Y, EYE_Y, lx - FRAME_WIDTH, ly - FRAME_WIDTH)
    _paint(ids, LENS, eye_dist, np.where(glasses, inner, EMPTY))

    eye_size = column['eye_size']
    eye_ax, eye_ay = 0.08 + 0.055 * eye_size, 0.055 + 0.055 * eye_size
    iris_r = 0.85 * eye_ay
    _paint(ids, EYE_WHITE, eye_dist, _ellipse_half_width(Y, EYE_Y, eye_ax, eye_ay))
    _paint(ids, IRIS, eye_dist, _ellipse_half_width(Y, EYE_Y, iris_r, iris_r))
    _paint(ids, PUPIL, eye_dist, _ellipse_half_width(Y, EYE_Y, 0.5 * iris_r, 0.5 * iris_r))

    # Mouth: a stroke around the parabola y = MOUTH_Y + 0.16 * smile * (0.5 - u^2), so the
    # corners rise for a smile and drop for a frown; it thickens in the middle for a broad
    # smile, which opens the mouth into a D shape. Its bounds are per column, so it is
    # painted on the transposed map with y as the distance.
    smile = column['smile']
    u = np.clip(X / MOUTH_HALF_WIDTH, -1.0, 1.0)
    centre = MOUTH_Y + 0.16 * smile * (0.5 - u**2)
    half_thickness = 0.04 * (1.0 - 0.5 * u**2) + 0.07 * np.maximum(smile, 0.0) * (1.0 - u**2)
    in_mouth = absX < MOUTH_HALF_WIDTH
    _paint(ids.transpose(0, 2, 1), MOUTH, Y, np.where(in_mouth, centre + half_thickness, EMPTY),
           lo=np.where(in_mouth, centre - half_thickness, -EMPTY))

    # Frames go on top: rings may cross the fringe, arms reach over the hair.
    outer = np.where(glasses, _ellipse_half_width(Y, EYE_Y, lx, ly), EMPTY)
    _paint(ids, FRAME, eye_dist, outer, lo=inner)
    bar = glasses & (Y >= EYE_Y - 0.06) & (Y < EYE_Y - 0.06 + FRAME_WIDTH)
    _paint(ids, FRAME, absX, np.where(bar, EYE_X - lx + FRAME_WIDTH, EMPTY))
    _paint(ids, FRAME, absX, np.where(bar, face_ax, EMPTY),
           lo=np.full_like(Y, EYE_X + lx - FRAME_WIDTH))
    return ids


def render(attrs: dict[str, np.ndarray], resolution: int = 32,
           supersample: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Renders faces from sample_attributes-style attrs (all keys, [n] arrays).

    Shapes are tested at supersample x resolution and box-filtered; the region of an
    output pixel is the REGIONS id covering most of its sub-pixels (ties go to the later,
    smaller region). Returns images uint8 [n, R, R, 3] and regions uint8 [n, R, R] with
    ids into REGIONS.
    """
    n = len(attrs['smile'])
    size, materials = resolution * supersample, len(MATERIAL_REGION)
    # Faces go through in chunks that keep the working set small enough to stay in cache.
    chunk = max(1, CHUNK_SUBPIXELS // size**2)
    pixel = np.arange(size) // supersample
    # bincount key of each sub-pixel: (face in chunk, output pixel, material) flattened.
    pixel_slot = (pixel[:, None] * resolution + pixel[None, :]) * materials
    face_slot = np.arange(chunk)[:, None, None] * (resolution**2 * materials)
    slots = (face_slot + pixel_slot).astype(np.int64)  # [chunk, size, size]
    to_region = np.eye(len(REGIONS), dtype=np.float32)[MATERIAL_REGION]  # [M, regions]
    # On equal votes the later region wins: eyes and mouth are thin, so their edge pixels
    # should not all go to the surrounding skin.
    tie_break = np.arange(len(REGIONS), dtype=np.float32) * 1e-3
    palette = _palette(attrs)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    regions = np.empty((n, resolution, resolution), np.uint8)
    for start in range(0, n, chunk):
        ids = _rasterize({key: value[start:start + chunk] for key, value in attrs.items()}, size)
        m = len(ids)
        counts = np.bincount((slots[:m] + ids).ravel(), minlength=m * resolution**2 * materials)
        coverage = counts.reshape(m, resolution**2, materials).astype(np.float32)
        colour = coverage @ palette[start:start + m] * (255.0 / supersample**2)
        images[start:start + m] = np.rint(colour).reshape(m, resolution, resolution, 3)
        region_votes = coverage @ to_region + tie_break
        regions[start:start + m] = region_votes.argmax(-1).reshape(m, resolution, resolution)
    return images, regions


def render_seeds(seeds, resolution: int = 32,
                 supersample: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Renders one face per integer seed, each from sample_attributes(default_rng(seed), 1),
    so a face does not depend on which other seeds share the batch.
    Returns images uint8 [len(seeds), R, R, 3] and regions uint8 [len(seeds), R, R]."""
    faces = [sample_attributes(np.random.default_rng(seed), 1) for seed in seeds]
    attrs = {key: np.concatenate([face[key] for face in faces]) for key in faces[0]}
    return render(attrs, resolution, supersample)


def mean_region_masks(resolution: int, n: int = 2000, seed: int = 0,
                      supersample: int = 4) -> dict[str, np.ndarray]:
    """Fraction of n random faces (drawn with default_rng(seed)) in which each pixel
    belongs to each region: {region name: float32 [R, R]} over REGIONS."""
    _, regions = render(sample_attributes(np.random.default_rng(seed), n), resolution,
                        supersample)
    return {name: (regions == i).mean(0, dtype=np.float32) for i, name in enumerate(REGIONS)}


def region_mask(region: str, resolution: int, threshold: float = 0.5, n: int = 2000,
                seed: int = 0) -> np.ndarray:
    """Pixels inside `region` in at least a `threshold` fraction of faces: bool [R, R]."""
    return mean_region_masks(resolution, n, seed)[region] >= threshold
