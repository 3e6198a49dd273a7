import numpy as np
import pytest

from stylejax.toyfaces import (ATTRIBUTE_REGION, BINARY_ATTRIBUTES, REGIONS, binary_labels,
                               mean_region_masks, region_mask, render, render_seeds,
                               sample_attributes)

# Two values per attribute that flip its binary label.
FLIPS = {
    'smile': (-0.8, 0.8),
    'eyeglasses': (False, True),
    'hair_color': (0.1, 0.9),
    'hair_length': (0.1, 0.9),
    'skin_tone': (0.1, 0.9),
    'eye_size': (0.1, 0.9),
    'background': (0.25, 0.75),
}
# Region the global attributes (ATTRIBUTE_REGION None) recolour.
GLOBAL_REGION = {'skin_tone': 'skin', 'background': 'background'}


def faces(n, seed=0):
    return sample_attributes(np.random.default_rng(seed), n)


def with_value(attrs, name, value):
    changed = dict(attrs)
    changed[name] = np.full_like(attrs[name], value)
    return changed


def dilate(mask):
    """3x3 binary dilation of bool [n, H, W]: the antialiasing margin of one pixel."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    h, w = mask.shape[1:]
    return np.any([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def region_id(name):
    return REGIONS.index(name)


def test_same_seed_same_face_regardless_of_batch():
    images, regions = render_seeds([3, 4, 5])
    again, again_regions = render_seeds([3, 4, 5])
    alone, alone_regions = render_seeds([4])
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(regions, again_regions)
    np.testing.assert_array_equal(images[1:2], alone)
    np.testing.assert_array_equal(regions[1:2], alone_regions)


def test_different_seeds_differ():
    images, _ = render_seeds(range(16))
    flat = images.reshape(16, -1)
    assert len(np.unique(flat, axis=0)) == 16


@pytest.mark.parametrize('resolution', [32, 64, 128])
def test_shapes_and_all_regions_present(resolution):
    images, regions = render(faces(4), resolution)
    assert images.shape == (4, resolution, resolution, 3) and images.dtype == np.uint8
    assert regions.shape == (4, resolution, resolution) and regions.dtype == np.uint8
    for face in regions:
        assert set(np.unique(face)) == set(range(len(REGIONS)))


def test_background_pixels_have_background_colour():
    images, regions = render(faces(64))
    assert (regions[:, 0, 0] == region_id('background')).all()
    interior = ~dilate(regions != region_id('background'))
    differs = (images != images[:, :1, :1]).any(-1)
    assert interior.mean() > 0.3 and not (differs & interior).any()


def test_mouth_is_darker_and_redder_than_skin():
    images, regions = render(faces(64))
    rgb = images.astype(float)
    for image, region in zip(rgb, regions):
        mouth, skin = image[region == region_id('mouth')], image[region == region_id('skin')]
        assert len(mouth) > 0
        assert mouth.mean() < skin.mean() - 15
        assert (mouth[:, 0] - mouth[:, 1]).mean() > (skin[:, 0] - skin[:, 1]).mean() + 30


@pytest.mark.parametrize('resolution', [32, 64])
def test_mouth_corners_rise_for_smile_and_drop_for_frown(resolution):
    attrs = faces(32)
    for smile, corners_higher in [(0.8, True), (-0.8, False)]:
        _, regions = render(with_value(attrs, 'smile', smile), resolution)
        for mouth in regions == region_id('mouth'):
            rows = np.arange(resolution)[:, None]
            columns = np.flatnonzero(mouth.any(0))
            mean_row = (rows * mouth).sum(0)[columns] / mouth.sum(0)[columns]
            corner_row = (mean_row[0] + mean_row[-1]) / 2
            centre_row = mean_row[len(columns) // 2]
            assert (corner_row < centre_row) == corners_higher


def test_eyeglasses_add_eye_pixels_and_nothing_else():
    attrs = faces(32)
    bare, bare_regions = render(with_value(attrs, 'eyeglasses', False))
    worn, worn_regions = render(with_value(attrs, 'eyeglasses', True))
    eyes = region_id('eyes')
    bare_eyes, worn_eyes = bare_regions == eyes, worn_regions == eyes
    # Frames count as eyes: the eyes region only grows, by a visible amount.
    assert not (bare_eyes & ~worn_eyes).any()
    assert (worn_eyes.sum((1, 2)) >= bare_eyes.sum((1, 2)) + 10).all()
    changed = (bare != worn).any(-1)
    assert not (changed & ~dilate(bare_eyes | worn_eyes)).any()


def render_flip(name, seed=1):
    """Renders 32 faces at both FLIPS values of one attribute: (images, regions) pairs."""
    attrs = faces(32, seed)
    return [render(with_value(attrs, name, value)) for value in FLIPS[name]]


def affected_region(name):
    return region_id(ATTRIBUTE_REGION[name] or GLOBAL_REGION[name])


@pytest.mark.parametrize('name', ['smile', 'eyeglasses', 'hair_length', 'eye_size'])
def test_shape_attribute_changes_only_its_region(name):
    (images_a, regions_a), (images_b, regions_b) = render_flip(name)
    inside = dilate((regions_a == affected_region(name)) | (regions_b == affected_region(name)))
    changed = (images_a != images_b).any(-1)
    assert changed.any(axis=(1, 2)).all()
    # Edges move by antialiasing fractions of a pixel, hence the one-pixel margin.
    assert not (changed & ~inside).any()
    assert not ((regions_a != regions_b) & ~inside).any()


@pytest.mark.parametrize('name', ['hair_color', 'skin_tone', 'background'])
def test_colour_attribute_changes_only_its_region(name):
    (images_a, regions_a), (images_b, regions_b) = render_flip(name)
    np.testing.assert_array_equal(regions_a, regions_b)
    inside = regions_a == affected_region(name)
    change = np.abs(images_a.astype(int) - images_b.astype(int))  # [n, R, R, 3]
    # A pixel changes by (its coverage by the region) x (the full colour change), and
    # pixels outside the region are covered by it at most half (majority rule).
    full_change = change.max(axis=(1, 2), keepdims=True)
    assert (full_change > 20).any(-1).all()
    bound = np.broadcast_to(0.5 * full_change + 1, change.shape)  # +1: rounding to uint8
    assert (change <= bound)[~inside].all()
    assert (change[inside].max(-1) > 0).mean() > 0.95


def test_attribute_tables_agree():
    assert list(ATTRIBUTE_REGION) == list(BINARY_ATTRIBUTES) == list(FLIPS)
    assert all(region is None or region in REGIONS for region in ATTRIBUTE_REGION.values())
    for name, (low, high) in FLIPS.items():
        column = list(BINARY_ATTRIBUTES).index(name)
        labels = [binary_labels(with_value(faces(1), name, v))[0, column] for v in (low, high)]
        assert labels == [False, True] or (name == 'background' and labels == [True, False])


def test_labels_balanced_and_independent():
    labels = binary_labels(faces(5000, seed=2))
    assert labels.shape == (5000, len(BINARY_ATTRIBUTES)) and labels.dtype == bool
    assert ((labels.mean(0) > 0.4) & (labels.mean(0) < 0.6)).all()
    correlation = np.corrcoef(labels.T.astype(float))
    assert np.abs(correlation - np.eye(len(BINARY_ATTRIBUTES))).max() < 0.05


def test_mean_region_masks_partition_the_image():
    masks = mean_region_masks(32, n=200)
    assert list(masks) == list(REGIONS)
    stacked = np.stack(list(masks.values()))
    assert stacked.dtype == np.float32 and stacked.shape == (len(REGIONS), 32, 32)
    np.testing.assert_allclose(stacked.sum(0), 1.0, atol=1e-5)
    rows = np.arange(32)
    mouth_row = (masks['mouth'].sum(1) * rows).sum() / masks['mouth'].sum()
    eyes_row = (masks['eyes'].sum(1) * rows).sum() / masks['eyes'].sum()
    assert eyes_row + 4 < mouth_row
    mask = region_mask('mouth', 32, threshold=0.25, n=200)
    np.testing.assert_array_equal(mask, masks['mouth'] >= 0.25)
    assert 0 < mask.sum() < 40
