# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # 02 · Directions: sample codes, fit linear SVMs, separability of S
#
# Following InterFaceGAN and the paper: score sampled codes with an attribute
# classifier, keep the top and bottom scores as positive and negative examples,
# and fit one linear SVM per attribute — all attributes at once — in S, Z and W.

# %%
import matplotlib.pyplot as plt
import numpy as np

from stylejax.demo import default_world
import dataclasses

from stylejax.directions import fit_directions
from stylejax.evaluation import scored_codes

world = default_world()
N_CODES = 3000
codes, labels = scored_codes(world.G, world.scorer, world.names, N_CODES, psi=0.7, seed=0)
print(world.description)
print(f"{len(codes)} codes; attributes: {labels.names}")

# %% [markdown]
# ## Separability: validation accuracy per attribute and space

# %%
# world.fit: how this model's scores become labels (toyfaces: the classifier's decision).
fit = dataclasses.replace(world.fit, sparsity=None)
accuracy = {space: {d.attribute: d.report["val_acc"] for d in fit_directions(codes, labels, space, config=fit)}
            for space in ("z", "w", "s")}
names = labels.names
x = np.arange(len(names))
plt.figure(figsize=(8, 3))
for i, space in enumerate(("z", "w", "s")):
    plt.bar(x + 0.27 * (i - 1), [accuracy[space][n] for n in names], 0.27, label=space.upper())
plt.xticks(x, names, rotation=30)
plt.ylim(0.5, 1.0)
plt.ylabel("validation accuracy")
plt.legend();

# %% [markdown]
# ## Sparse S directions: accuracy against the number of channels

# %%
fractions = [0.01, 0.05, 0.2]
sparse = {f: fit_directions(codes, labels, "s", config=dataclasses.replace(fit, sparsity=f)) for f in fractions}
for n_idx, name in enumerate(names):
    plt.plot([100 * f for f in fractions], [sparse[f][n_idx].report["val_acc"] for f in fractions],
             marker="o", label=name)
plt.xscale("log")
plt.xlabel("% of S channels kept")
plt.ylabel("validation accuracy")
plt.legend(fontsize=7);

# %% [markdown]
# Where do the sparse directions live? Non-zero channels per layer:

# %%
space = world.G.space
ids = np.asarray(space.layer_ids())
d = sparse[0.05][0]
counts = np.bincount(ids[d.normal != 0], minlength=len(space.layers))
plt.figure(figsize=(8, 2.5))
plt.bar(range(len(counts)), counts)
plt.xticks(range(len(counts)), space.names, rotation=90)
plt.title(f"{d.attribute}: non-zero channels per layer");
