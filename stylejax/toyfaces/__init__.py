"""Procedural cartoon faces with independent ground-truth attributes and region maps."""

from stylejax.toyfaces.attributes import (ATTRIBUTE_REGION, BINARY_ATTRIBUTES, NUISANCE,
                                          REGIONS, binary_labels, sample_attributes)
from stylejax.toyfaces.render import mean_region_masks, region_mask, render, render_seeds
