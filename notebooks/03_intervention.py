# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # 03 · Style intervention on a batch of faces
#
# Per face, optimise λ in `ds(λ) = ds_z + λ (ds_n − ds_z)`: λ = 0 is the
# realistic but entangled Z translation, λ = 1 the sparse S translation.
# The loss keeps the pixels outside the region mask and aligns `ds` with
# `ds_n`; every face of the batch is optimised in the same compiled step.

# %%
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from stylejax.demo import comparison_grid, default_world
from stylejax.evaluation import EvalConfig, evaluate_attribute, scored_codes
from stylejax.intervention import InterventionConfig

world = default_world()
attribute = "smile"
mask = world.masks[attribute]
codes, labels = scored_codes(world.G, world.scorer, world.names, 3000, psi=0.7, seed=0)
cfg = EvalConfig(n_faces=8, batch=8, fit=world.fit,
                 intervention=InterventionConfig(steps=60))
row, results = evaluate_attribute(world.G, codes, labels, world.scorer, attribute, mask, cfg)
print(world.description)

# %% [markdown]
# Columns: original, Z translation, S translation, intervention, the mask.

# %%
plt.figure(figsize=(5, 8))
plt.imshow(comparison_grid(results, mask))
plt.axis("off");

# %%
for method in ("z", "s", "intervention"):
    print(f"{method:13s} attribute change {row[method + '_attribute_change']:7.3f}   "
          f"outside {row[method + '_outside_change']:.4f}   inside {row[method + '_inside_change']:.4f}")

# %% [markdown]
# ## Loss curves and λ per layer

# %%
res = results["intervention"]
plt.plot(res.loss_history)
plt.xlabel("step")
plt.ylabel("loss (one line per face)");

# %%
space = world.G.space
ids = np.asarray(space.layer_ids())
per_layer = np.stack([[lam[ids == i].mean() for i in range(len(space.layers))] for lam in res.lam])
plt.figure(figsize=(8, 3))
plt.imshow(per_layer, aspect="auto", cmap="coolwarm", vmin=-1, vmax=2)
plt.colorbar(label="mean λ")
plt.xticks(range(len(space.layers)), space.names, rotation=90)
plt.ylabel("face");
