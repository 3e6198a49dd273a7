"""Conversion of a full FFHQ-1024 config-f generator: wall time and peak RSS.

The benchmark writes its own input: the ffhq-shape recipe weights (fixtures
README) as an ada-format training snapshot with separate G and G_ema (about
265 MB), using the torch-free pickle writer of the format tests. It then runs
`stylejax convert` in a fresh process and reports that process's wall time and
peak RSS. Targets: < 30 s and < 2 GB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "formats"))
sys.path.insert(0, str(Path(__file__).parent))

from _writers import EasyDict, ada_generator, dumps  # noqa: E402
from common import machine, table  # noqa: E402
from stylejax import GeneratorConfig  # noqa: E402
from stylejax.formats import expected_state_dict_shapes  # noqa: E402
from stylejax.recipe import recipe_state_dict  # noqa: E402

SEED = 1004  # the ffhq-shape fixture's weight_seed


def write_snapshot(path: Path) -> None:
    kwargs = GeneratorConfig().to_official_kwargs()
    sd = recipe_state_dict(expected_state_dict_shapes(kwargs).items(), SEED)
    snapshot = {"G": ada_generator(sd, kwargs), "D": None, "G_ema": ada_generator(sd, kwargs),
                "augment_pipe": None, "training_set_kwargs": EasyDict()}
    path.write_bytes(dumps(snapshot, protocol=4))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "ffhq-snapshot.pkl"
        t0 = time.perf_counter()
        write_snapshot(src)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "stylejax.cli", "convert", str(src), str(Path(tmp) / "ckpt")],
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size_mb = src.stat().st_size / 2**20
    rows = [{"case": "ffhq-1024 ada snapshot (G + G_ema)", "file_mb": size_mb, "wall_s": wall,
             "rss_mb": rss_mb, "target": "< 30 s, < 2048 MB",
             "ok": "yes" if wall < 30 and rss_mb < 2048 else "NO"}]
    print(f"Machine: {machine()}")
    print(f"(writing the input took {write_s:.1f} s, not counted)\n")
    print(table(rows, [("case", "case"), ("file_mb", "file MB"), ("wall_s", "convert wall s"),
                       ("rss_mb", "peak RSS MB"), ("target", "target"), ("ok", "met")]))
    print(json.dumps(rows[0]), file=sys.stderr)


if __name__ == "__main__":
    main()
