"""The resumable batch edit job behind `stylejax edit`.

For every face (a seed, or a row of an external W / W+ latent file) it writes

    <key>_original.png, <key>_edited.png
    <key>.npz     lam, s (original), s_edit, loss_history, flagged and the metrics

each atomically, the `.npz` last: a face counts as done when its `.npz`
exists, so a restarted job skips it. `job.json` records the settings, and a
restart with other settings into the same folder is refused. At the end
`grid.png` (originals over edits) and `summary.json` are written from the
files on disk.

Several hosts: run the same command under `jax.distributed` (or pass
process_index / process_count); process i takes the faces whose position in
the face list is i modulo the process count. Each process writes only its own
faces; process 0 writes the summary of what is complete when it finishes, and
rerunning the command once all processes are done rewrites it for all faces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import jax.numpy as jnp
import numpy as np
from PIL import Image

from .directions import Directions
from .generator import Generator, functional, identity, jitted
from .images import grid, save_png, to_uint8
from .intervention import InterventionConfig, Result, even_batches, intervene
from .masks import footprint_mask, load_masks
from .io import check_settings, write_json, write_npz
from .translations import s_translation, w_translation, z_translation

JOB_FILE = "job.json"


@dataclasses.dataclass(frozen=True)
class EditSpec:
    attribute: str
    alpha: float = 10.0  # S translation strength, in std units of S
    alpha_z: float = 3.0  # Z (or W) translation strength
    translation: str = "z"  # "z" or "w": the realistic translation ds_z comes from this space
    psi: float = 0.7
    cutoff: int | None = None


@dataclasses.dataclass(frozen=True)
class FaceInputs:
    """Faces to edit: `keys` name them; either z (seeds or arrays) or final latents (W / W+)."""

    keys: list[str]
    z: np.ndarray | None = None  # [N, z_dim]
    ws: np.ndarray | None = None  # [N, w_dim] or [N, num_ws, w_dim], already final (no truncation)


def faces_from_seeds(seeds: list[int], z_dim: int) -> FaceInputs:
    from .latents import z_from_seeds

    return FaceInputs([f"seed{s:05d}" for s in seeds], z=z_from_seeds(seeds, z_dim))


def faces_from_z(z: np.ndarray) -> FaceInputs:
    return FaceInputs([f"z{i:05d}" for i in range(len(z))], z=np.asarray(z, np.float32))


def faces_from_latents(ws: np.ndarray) -> FaceInputs:
    return FaceInputs([f"latent{i:05d}" for i in range(len(ws))], ws=ws)


class EditJob:
    """Everything validated up front; `run()` does the compute."""

    def __init__(self, G: Generator, directions: Directions, spec: EditSpec, faces: FaceInputs, mask, out,
                 config: InterventionConfig = InterventionConfig(), batch: int = 16,
                 process_index: int = 0, process_count: int = 1):
        directions.check_generator(identity(G))
        self.d_s = directions.get(spec.attribute, "s")
        if spec.translation not in ("z", "w"):
            raise ValueError(f"translation must be 'z' or 'w', got {spec.translation!r}")
        if faces.ws is not None and spec.translation == "z":
            raise ValueError("external W/W+ latents can only be edited with a W translation (translation='w')")
        self.d_z = directions.get(spec.attribute, spec.translation)
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        res = G.config.img_resolution
        self.auto_mask = isinstance(mask, str) and mask == "auto"
        self.mask = None if self.auto_mask else load_masks(mask, res, keys=faces.keys)
        if self.mask is not None and self.mask.ndim == 3 and len(self.mask) != len(faces.keys):
            raise ValueError(f"{len(self.mask)} masks for {len(faces.keys)} faces: give one mask or one per face")
        self.G, self.spec, self.faces, self.config, self.batch = G, spec, faces, config, batch
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        settings = self._settings(identity(G), mask)
        if not check_settings(self.out / JOB_FILE, settings, "edits"):
            write_json(self.out / JOB_FILE, settings)
        mine = list(range(process_index, len(faces.keys), process_count))
        self.todo = [i for i in mine if not (self.out / f"{faces.keys[i]}.npz").exists()]
        self.process_index = process_index

    def _settings(self, generator: dict, mask) -> dict:
        import hashlib

        digest = lambda a: hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()[:16]
        return {
            "generator": generator, "spec": dataclasses.asdict(self.spec),
            "config": {k: v for k, v in dataclasses.asdict(self.config).items() if k != "optimizer"},
            "optimizer": "default" if self.config.optimizer is None else repr(self.config.optimizer),
            "directions": {"s": digest(self.d_s.normal), "s_std": digest(self.d_s.std), "z": digest(self.d_z.normal)},
            "mask": "auto" if self.auto_mask else (digest(self.mask) if self.mask.ndim == 2 else str(mask)),
        }

    def _styles(self, idx):
        fn, params = functional(self.G)
        spec = self.spec
        if self.faces.z is not None:
            z = jnp.asarray(self.faces.z[idx])
            ws = jitted(fn, "mapping")(params, z)
            ws_t = jitted(fn, "truncate")(params, ws, spec.psi, cutoff=spec.cutoff)
            if spec.translation == "z":
                ds_z = z_translation(fn, params, z, self.d_z.normal, spec.alpha_z, psi=spec.psi, cutoff=spec.cutoff)
            else:
                ds_z = w_translation(fn, params, ws, self.d_z.normal, spec.alpha_z, spec.psi, cutoff=spec.cutoff)
        else:
            ws_t = jnp.asarray(self.faces.ws[idx])
            ds_z = w_translation(fn, params, ws_t, self.d_z.normal, spec.alpha_z)
        s = jitted(fn, "styles")(params, ws_t)
        sigma = jnp.asarray(self.d_s.std)
        return s, ds_z, s_translation(self.d_s.normal, sigma, spec.alpha), sigma

    def _mask_for(self, idx, s, ds_n):
        if self.auto_mask:
            fn, params = functional(self.G)
            render = jitted(fn, "render")
            original = render(params, s, noise_mode=self.config.noise_mode)
            edited = render(params, s + ds_n, noise_mode=self.config.noise_mode)
            return footprint_mask(original, edited)
        return self.mask if self.mask.ndim == 2 else self.mask[idx]

    def run(self, progress: Callable[[int, int], None] | None = None,
            scorer: Callable | None = None) -> dict:
        done = 0
        for positions in even_batches(len(self.todo), self.batch):
            real = [p for p in positions if p < len(self.todo)]
            idx = np.array([self.todo[min(p, len(self.todo) - 1)] for p in positions])
            s, ds_z, ds_n, sigma = self._styles(idx)
            mask = self._mask_for(idx, s, ds_n)
            res = intervene(self.G, s, ds_z, ds_n, mask, self.config, sigma=sigma, scorer=scorer)
            for j in range(len(real)):
                face_mask = mask if mask.ndim == 2 else mask[j]
                self._write_face(self.faces.keys[idx[j]], res, j, np.asarray(s[j]), np.asarray(face_mask))
            done += len(real)
            if progress:
                progress(done, len(self.todo))
        return self.write_summary() if self.process_index == 0 else {}

    def _write_face(self, key: str, res: Result, j: int, s: np.ndarray, mask: np.ndarray) -> None:
        save_png(self.out / f"{key}_original.png", to_uint8(res.original[j]))
        save_png(self.out / f"{key}_edited.png", to_uint8(res.images[j]))
        arrays = {"lam": res.lam[j], "s": s, "s_edit": res.s_edit[j], "loss_history": res.loss_history[:, j],
                  "flagged": res.flagged[j], "mask": mask.astype(np.uint8)}
        arrays.update({f"metric_{k}": v[j] for k, v in res.metrics.items()})
        write_npz(self.out / f"{key}.npz", **arrays)  # last: its presence marks the face done

    def write_summary(self, grid_faces: int = 16) -> dict:
        done = [k for k in self.faces.keys if (self.out / f"{k}.npz").exists()]
        metrics: dict[str, list] = {}
        flagged = []
        for k in done:
            with np.load(self.out / f"{k}.npz") as npz:
                if bool(npz["flagged"]):
                    flagged.append(k)
                for name in npz.files:
                    if name.startswith("metric_"):
                        metrics.setdefault(name[7:], []).append(float(npz[name]))
        summary = {
            "attribute": self.spec.attribute, "spec": dataclasses.asdict(self.spec),
            "config": {k: v for k, v in dataclasses.asdict(self.config).items() if k != "optimizer"},
            "faces_total": len(self.faces.keys), "faces_done": len(done), "flagged": flagged,
            "metrics_mean": {k: float(np.mean(v)) for k, v in metrics.items()},
        }
        write_json(self.out / "summary.json", summary)
        if done:
            shown = done[:grid_faces]
            load = lambda p: np.asarray(Image.open(p).convert("RGB"))
            rows = [load(self.out / f"{k}_original.png") for k in shown] + [load(self.out / f"{k}_edited.png") for k in shown]
            save_png(self.out / "grid.png", grid(np.stack(rows), ncol=len(shown)))
        return summary
