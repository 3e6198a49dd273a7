# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # 04 · Analyses from the paper
#
# 1. **Spatially disentangled interpolation**: keep the optimised λ* and scale
#    the sparse S component `ds_n`; only the target region should change.
# 2. **Intermediate generation**: the partial renders (skip-architecture
#    images) of successive blocks for the original and the edited code.

# %%
import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import stylejax as sj
from stylejax.demo import default_world
from stylejax.directions import fit_directions
from stylejax.evaluation import scored_codes
from stylejax.images import grid, to_uint8
from stylejax.intervention import InterventionConfig, intervene, masked_change
from stylejax.translations import s_translation, z_translation

world = default_world()
G, attribute = world.G, "smile"
mask = world.masks[attribute]
codes, labels = scored_codes(G, world.scorer, world.names, 3000, psi=0.7, seed=0)
(d_s,) = fit_directions(codes, labels, "s", [attribute], world.fit)
(d_z,) = fit_directions(codes, labels, "z", [attribute], dataclasses.replace(world.fit, sparsity=None))
print(world.description)

fn, params = sj.functional(G)
z = jax.random.normal(jax.random.key(1), (4, G.config.z_dim))
s = G.styles(G.mapping(z, psi=0.7))
ds_z = z_translation(fn, params, z, d_z.normal, 3.0, psi=0.7)
ds_n = s_translation(d_s.normal, codes.std, 10.0)
res = intervene(G, s, ds_z, ds_n, mask, InterventionConfig(steps=60), sigma=codes.std)

# %% [markdown]
# ## 1 · Spatially disentangled interpolation
# `s(t) = s + ds_z + λ* (t·ds_n − ds_z)`; t = 1 is the optimised edit.

# %%
ts = [0.0, 0.5, 1.0, 1.5, 2.0]
lam = jnp.asarray(res.lam)
frames = [G.render(s + ds_z + lam * (t * ds_n - ds_z)) for t in ts]
tiles = np.stack([to_uint8(f) for f in frames], axis=1).reshape(-1, *frames[0].shape[1:])
plt.figure(figsize=(6, 5))
plt.imshow(grid(tiles, ncol=len(ts)))
plt.title("t = " + ", ".join(map(str, ts)))
plt.axis("off");

# %%
base = frames[0]
out = [float(jnp.mean(masked_change(f, base, jnp.broadcast_to(1 - mask, f.shape[:3])))) for f in frames]
inside = [float(jnp.mean(masked_change(f, base, jnp.broadcast_to(mask, f.shape[:3])))) for f in frames]
plt.plot(ts, inside, marker="o", label="inside the mask")
plt.plot(ts, out, marker="o", label="outside the mask")
plt.xlabel("t (scale of ds_n)")
plt.ylabel("mean squared change vs t = 0")
plt.legend();

# %% [markdown]
# ## 2 · Intermediate generation
# The image accumulated after each synthesis block, original (top) and edited (bottom).

# %%
def partial_renders(codes):
    blocks = G.render_blocks(codes[:1])
    size = G.config.img_resolution
    return [np.asarray(jax.image.resize(img, (1, size, size, img.shape[-1]), "nearest"))[0] for _, img in blocks]

rows = partial_renders(s) + partial_renders(jnp.asarray(res.s_edit))
plt.figure(figsize=(8, 3))
plt.imshow(grid(to_uint8(np.stack(rows)), ncol=len(rows) // 2))
plt.title(" | ".join(f"{r}px" for r in G.config.block_resolutions))
plt.axis("off");
