"""Indexed model on CompressAI's own GaussianConditional tables: round trip on its indexes and
sizes within 1% of CompressAI's RansEncoder on the same symbols."""
import math
import warnings

import numpy as np
import pytest

from neuralcodec.entropy import coder as C

torch = pytest.importorskip("torch")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ans = pytest.importorskip("compressai.ans")
    entropy_models = pytest.importorskip("compressai.entropy_models")


@pytest.fixture(scope="module")
def conditional():
    gc = entropy_models.GaussianConditional(None)
    gc.update_scale_table(torch.exp(torch.linspace(math.log(0.11), math.log(256), 64)))
    gc.update()
    return gc


def _tables(gc):
    return (gc._quantized_cdf.numpy(), gc._cdf_length.reshape(-1).numpy(),
            gc._offset.reshape(-1).numpy())


@pytest.mark.parametrize("seed", [0, 1])
def test_indexed_matches_compressai(conditional, seed):
    rng = np.random.default_rng(seed)
    n = 50_000
    scales = np.exp(rng.uniform(math.log(0.1), math.log(20), n)).astype(np.float32)
    means = rng.normal(0, 1, n).astype(np.float32)
    y = rng.normal(means, scales).astype(np.float32)
    sym = np.round(y - means).astype(np.int32)
    sym[::1000] = rng.integers(-(2**31), 2**31 - 1, len(sym[::1000]))  # overflow path
    idx = conditional.build_indexes(torch.from_numpy(scales)).int().numpy()
    cdfs, lengths, offsets = _tables(conditional)

    ours = C.encode_indexed(sym, idx, cdfs, lengths, offsets)
    assert np.array_equal(C.decode_indexed(ours, idx, cdfs, lengths, offsets), sym)
    # The table contract is CompressAI's: its lists work unchanged.
    assert ours == C.encode_indexed(sym.tolist(), idx.tolist(), cdfs.tolist(), lengths.tolist(),
                                    offsets.tolist())

    # CompressAI's escape uses 4-bit groups with its own bypass coding; sizes differ only there.
    inside = sym.copy()
    inside[::1000] = 0
    theirs = ans.RansEncoder().encode_with_indexes(
        inside.tolist(), idx.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())
    mine = C.encode_indexed(inside, idx, cdfs, lengths, offsets)
    assert abs(len(mine) / len(theirs) - 1) < 0.01
    decoded = ans.RansDecoder().decode_with_indexes(
        theirs, idx.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())
    assert np.array_equal(np.array(decoded, np.int32), inside)
    # Ideal bits under CompressAI's tables bound our size from below.
    ideal = C.ideal_bits_indexed(inside, idx, cdfs, lengths, offsets)
    assert ideal <= len(mine) * 8 <= ideal * 1.005 + 8 * 64


def test_gaussian_model_not_worse_than_compressai_tables(conditional):
    rng = np.random.default_rng(2)
    n = 50_000
    scales = np.exp(rng.uniform(math.log(0.1), math.log(20), n)).astype(np.float32)
    sym = np.round(rng.normal(0, scales)).astype(np.int32)
    idx = conditional.build_indexes(torch.from_numpy(scales)).int().numpy()
    indexed = C.encode_indexed(sym, idx, *_tables(conditional))
    gaussian = C.encode_gaussian(sym, np.zeros(n, np.float32), scales)
    assert len(gaussian) <= len(indexed) * 1.01
