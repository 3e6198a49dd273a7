"""Labels for attribute directions: which samples are positive, negative, held out.

InterFaceGAN practice (method.md §2): score N sampled codes with an attribute
scorer, keep the top and bottom `ratio` of the scores as +1 / -1 (or label all
N by a threshold), then split each attribute's selected samples into training
and validation sets.

K attributes are handled at once. Their selected subsets differ, so a
selection is stored as dense `[K, N]` arrays (labels in {-1, 0, +1}, 0 = not
selected, and a training mask) rather than ragged index lists: they cost a few
bytes per sample, index the shared codes without copying them, and keep every
later computation a `vmap` over the attribute axis.

The split is stratified per attribute and class: one uniform draw per *sample*
(shared by all attributes) ranks the members of each class, and the first
`train_fraction` of each class trains. Sharing the draw means that in threshold
mode the attributes' training sets nearly coincide, so the fit can hold one
copy of the union of their rows instead of K different ones.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Selection(NamedTuple):
    """Per-attribute labels and split over N scored samples (a pytree).

    labels: [K, N] int8 in {-1, 0, +1}; 0 marks a sample not selected for that attribute.
    train:  [K, N] bool, selected samples in the training split.
    val:    [K, N] bool, selected samples in the validation split.
    """

    labels: jax.Array
    train: jax.Array
    val: jax.Array


def select_labels(
    scores,
    key: jax.Array,
    *,
    ratio: float | None = 0.02,
    threshold=None,
    train_fraction: float = 0.7,
) -> Selection:
    """Labels and a stratified train/validation split from attribute scores.

    Args:
      scores: [N] or [K, N] attribute scores (one row per attribute).
      key: PRNG key that fixes the split.
      ratio: keep the top and bottom `ratio * N` samples of each attribute
        (InterFaceGAN's default 0.02). Ignored when `threshold` is given.
      threshold: scalar or [K]; if given, every sample is labelled, +1 where
        its score is above the threshold and -1 otherwise.
      train_fraction: share of each class of each attribute used for training.

    Returns:
      A `Selection` with [K, N] arrays (K = 1 for 1-D scores).

    Raises:
      ValueError: non-finite scores, an empty selection, or an attribute left
        with a single class in its training or validation split.
    """
    scores = jnp.atleast_2d(jnp.asarray(scores, jnp.float32))  # [K, N]
    if not bool(jnp.all(jnp.isfinite(scores))):
        raise ValueError("scores contain NaN or inf; drop or rescore those samples first")
    if threshold is None:
        labels = _ratio_labels(scores, ratio)
    else:
        labels = _threshold_labels(scores, threshold)
    train = _stratified_train_mask(labels, key, train_fraction)
    selection = Selection(labels, train, (labels != 0) & ~train)
    _check_two_classes(selection)
    return selection


def _ratio_labels(scores: jax.Array, ratio: float) -> jax.Array:
    """+1 for the top, -1 for the bottom `ratio * N` scores of each row, else 0."""
    k, n = scores.shape
    count = int(n * ratio)  # floor, as InterFaceGAN does
    if count < 1 or 2 * count > n:
        raise ValueError(f"ratio={ratio} selects {count} samples per class out of N={n}; need 1 <= ratio*N <= N/2")
    order = jnp.argsort(scores, axis=1, stable=True)  # [K, N], ascending
    rows = jnp.arange(k)[:, None]
    labels = jnp.zeros((k, n), jnp.int8)
    labels = labels.at[rows, order[:, :count]].set(-1)
    return labels.at[rows, order[:, n - count :]].set(1)


def _threshold_labels(scores: jax.Array, threshold) -> jax.Array:
    """+1 above the (per-attribute) threshold, -1 at or below it."""
    threshold = jnp.broadcast_to(jnp.asarray(threshold, scores.dtype), scores.shape[:1])  # [K]
    return jnp.where(scores > threshold[:, None], 1, -1).astype(jnp.int8)


def _stratified_train_mask(labels: jax.Array, key: jax.Array, train_fraction: float) -> jax.Array:
    """[K, N] bool: the first `train_fraction` of each class in a random order."""
    u = jax.random.uniform(key, labels.shape[1:])  # [N], shared by all attributes (module docstring)
    train = jnp.zeros(labels.shape, bool)
    for cls in (-1, 1):
        member = labels == cls  # [K, N]
        # Rank of each member within its class by u; non-members sort last.
        rank = jnp.argsort(jnp.argsort(jnp.where(member, u, jnp.inf), axis=1), axis=1)
        n_train = jnp.round(train_fraction * member.sum(axis=1, keepdims=True, dtype=jnp.float32))  # [K, 1]
        train = train | (member & (rank.astype(jnp.float32) < n_train))
    return train


def _check_two_classes(selection: Selection) -> None:
    """Each attribute needs both classes in both splits for a meaningful fit."""
    for name, mask in (("training", selection.train), ("validation", selection.val)):
        labels = jnp.where(mask, selection.labels, 0)
        has_both = jnp.any(labels > 0, axis=1) & jnp.any(labels < 0, axis=1)  # [K]
        if not bool(jnp.all(has_both)):
            bad = [int(i) for i in jnp.flatnonzero(~has_both)]
            raise ValueError(
                f"attributes {bad} have a single class in the {name} split; "
                "check their scores or use a larger ratio / another threshold"
            )
