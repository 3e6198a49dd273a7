# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # 01 · Quickstart: load, generate, inspect the style space
#
# stylejax exposes StyleGAN2 through its **style space S**: the raw outputs of
# the per-layer affines. This notebook uses the bundled `toyfaces` model (a
# small StyleGAN2 trained on procedural faces); `stylejax.load("path")` loads
# a checkpoint converted from official weights the same way.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

import stylejax as sj
from stylejax.demo import default_world
from stylejax.images import grid, to_uint8

world = default_world()
G = world.G
print(world.description)
print(G.config)

# %% [markdown]
# ## generate = render(s) ∘ styles(ws) ∘ truncate ∘ mapping

# %%
z = jax.random.normal(jax.random.key(0), (16, G.config.z_dim))
ws = G.mapping(z, psi=0.7)   # [B, num_ws, w_dim]
s = G.styles(ws)             # [B, D_S]
img = G.render(s)            # [B, H, W, C]
print(ws.shape, s.shape, img.shape)
plt.figure(figsize=(8, 4))
plt.imshow(grid(to_uint8(img), ncol=8))
plt.axis("off");

# %% [markdown]
# ## The layout of S
# Every synthesis conv and every toRGB layer has a style vector; layers that
# read the same entry of W+ are adjacent.

# %%
space = G.space
print(f"{len(space.layers)} modulated layers, D_S = {space.dim} "
      f"({space.dim_of('conv')} conv + {space.dim_of('torgb')} toRGB)")
for layer in space.layers:
    print(f"{layer.name:10s} {layer.kind:5s} {layer.resolution:4d}px  ws[{layer.ws_index}]  "
          f"offset {layer.offset:5d}  width {layer.width}")

# %%
per_layer = space.unflatten(s)
spread = [float(np.std(per_layer[l.name])) for l in space.layers]
plt.figure(figsize=(8, 2.5))
plt.bar(range(len(spread)), spread)
plt.xticks(range(len(spread)), space.names, rotation=90)
plt.ylabel("std of s over 16 faces");

# %% [markdown]
# ## Style mixing and pure functions
# `stylejax.functional(G)` returns the same maps as pure functions of an
# explicit parameter state, ready for `jax.jit`, `jax.vmap` and `jax.grad`.

# %%
mixed = sj.mix_styles(ws[:8], ws[8:], crossover=G.num_ws // 2)
fn, params = sj.functional(G)
render = jax.jit(fn.render)
plt.figure(figsize=(8, 3))
plt.imshow(grid(to_uint8(np.concatenate([img[:8], render(params, G.styles(mixed)), img[8:]])), ncol=8))
plt.axis("off");

# %%
grad = jax.grad(lambda s: fn.render(params, s).mean())(s[:1])
print("d mean(image) / d s:", grad.shape, float(np.abs(grad).max()))
