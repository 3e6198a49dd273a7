"""Reading copies each needed tensor about once and reads nothing it does not need.

(Wall time is measured by benchmarks/bench_convert.py, not asserted here.)"""

import json
import tracemalloc

import numpy as np
from _paths import fixture
from _synthetic import rosinality_checkpoint
from _writers import ada_generator, dumps, torch_zip

from stylejax.formats import read_network


def small256():
    weights = fixture('stylegan2-ada', 'small256', 'weights.npz')
    return dict(np.load(weights)), json.loads(weights.with_name('config.json').read_text())['init_kwargs']


def measure(path):
    tracemalloc.start()
    result = read_network(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak


def test_ada_snapshot_memory(tmp_path):
    sd, kwargs = small256()
    nbytes = sum(a.nbytes for a in sd.values())
    # A training snapshot: G and G_ema are separate networks; only G_ema is materialised.
    snapshot = {'G': ada_generator(sd, kwargs), 'D': None, 'G_ema': ada_generator(sd, kwargs), 'augment_pipe': None}
    (tmp_path / 'snapshot.pkl').write_bytes(dumps(snapshot))
    result, peak = measure(tmp_path / 'snapshot.pkl')
    assert sum(a.nbytes for a in result.state_dict.values()) == nbytes
    # The unpickled storage blobs (2 networks) plus one output copy, with some slack.
    assert peak < 3.5 * nbytes, peak / nbytes


def test_rosinality_train_checkpoint_reads_only_g_ema(tmp_path):
    sd, _ = small256()
    nbytes = sum(a.nbytes for a in sd.values())
    checkpoint = rosinality_checkpoint(sd)
    checkpoint.update(g=rosinality_checkpoint(sd)['g_ema'], d=rosinality_checkpoint(sd)['g_ema'],
                      g_optim={'state': rosinality_checkpoint(sd)['g_ema']})
    (tmp_path / 'train.pt').write_bytes(torch_zip(checkpoint))
    assert (tmp_path / 'train.pt').stat().st_size > 4 * nbytes
    _, peak = measure(tmp_path / "train.pt")
    # Storages are read lazily from the zip: g_ema's records plus one output copy, not the whole archive.
    assert peak < 2.5 * nbytes, peak / nbytes
