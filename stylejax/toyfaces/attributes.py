"""Ground-truth attributes of toy faces: sampling, binary labels and the region each lives in.

Every attribute and nuisance variable is drawn independently, so any correlation between
labels in a sample is pure sampling noise.
"""

import numpy as np

REGIONS = ('background', 'skin', 'hair', 'eyes', 'mouth')

# Semantic attributes, each with the meaning of its binary label (True when ...).
BINARY_ATTRIBUTES = {
    'smile': 'smiling: mouth curvature > 0',
    'eyeglasses': 'wears eyeglasses',
    'hair_color': 'dark hair: hair darkness > 0.5',
    'hair_length': 'long hair: hair length > 0.5 (ends below the mouth)',
    'skin_tone': 'dark skin: skin darkness > 0.5',
    'eye_size': 'big eyes: eye size > 0.5',
    'background': 'warm background: background hue index < 0.5',
}

# Region whose pixels an attribute changes; None for global ones (colour of a large area).
ATTRIBUTE_REGION = {
    'smile': 'mouth',
    'eyeglasses': 'eyes',
    'hair_color': 'hair',
    'hair_length': 'hair',
    'skin_tone': None,
    'eye_size': 'eyes',
    'background': None,
}

# Variation that is not an attribute, so the generator has more than the labels to model.
NUISANCE = ('face_x', 'face_y', 'face_scale', 'face_width', 'iris_hue')


def sample_attributes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draws n independent faces.

    Returns a dict of [n] arrays: 'smile' float32 in [-1, 1]; 'eyeglasses' bool;
    'hair_color', 'hair_length', 'skin_tone', 'eye_size' float32 in [0, 1] (darkness,
    length, darkness, size); 'background' float32 in [0, 1) (< 0.5: warm hues, else cool);
    plus the NUISANCE keys: 'face_x', 'face_y' offsets and 'face_scale', 'face_width'
    factors (image units, image spans [-1, 1]), 'iris_hue' in [0, 1).
    """
    def uniform(lo, hi):
        return rng.uniform(lo, hi, n).astype(np.float32)

    return {
        'smile': uniform(-1.0, 1.0),
        'eyeglasses': rng.random(n) < 0.5,
        'hair_color': uniform(0.0, 1.0),
        'hair_length': uniform(0.0, 1.0),
        'skin_tone': uniform(0.0, 1.0),
        'eye_size': uniform(0.0, 1.0),
        'background': uniform(0.0, 1.0),
        'face_x': uniform(-0.05, 0.05),
        'face_y': uniform(-0.05, 0.05),
        'face_scale': uniform(1.0, 1.12),
        'face_width': uniform(0.85, 1.0),
        'iris_hue': uniform(0.0, 1.0),
    }


def binary_labels(attrs: dict[str, np.ndarray]) -> np.ndarray:
    """Binary labels bool [n, len(BINARY_ATTRIBUTES)], columns in BINARY_ATTRIBUTES order."""
    columns = {
        'smile': attrs['smile'] > 0,
        'eyeglasses': attrs['eyeglasses'].astype(bool),
        'hair_color': attrs['hair_color'] > 0.5,
        'hair_length': attrs['hair_length'] > 0.5,
        'skin_tone': attrs['skin_tone'] > 0.5,
        'eye_size': attrs['eye_size'] > 0.5,
        'background': attrs['background'] < 0.5,
    }
    return np.stack([columns[name] for name in BINARY_ATTRIBUTES], axis=1)
