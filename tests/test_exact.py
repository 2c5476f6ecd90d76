"""The integer-exact network path: determinism across configurations, closeness to float."""
import math

import pytest
import torch
from torch import nn

from neuralcodec.entropy.exact import ACT_FRAC, ExactNet, from_fixed, set_conv_impl, to_fixed
from neuralcodec.entropy.param_grid import (NUM_SCALES, SCALE_TABLE, mean_from_fixed,
                                            scale_index_from_fixed, weights_from_fixed)


def _net(seed=0):
    torch.manual_seed(seed)
    return ExactNet(nn.ConvTranspose2d(16, 24, 3, 2, 1, output_padding=1), nn.ReLU(),
                    nn.Conv2d(24, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 8, 1))


def _input(seed=1, shape=(2, 16, 6, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.randn(shape, generator=g) * 4 * 256) / 256   # on the 2**-8 grid


def test_exact_is_close_to_float():
    net = _net().eval()
    x = _input()
    ref = net(x.float()).double()
    out = from_fixed(net.exact(to_fixed(x)))
    err = (out - ref).norm() / ref.norm()
    assert err < 1e-3, err
    assert torch.equal(out * 2 ** ACT_FRAC, torch.round(out * 2 ** ACT_FRAC))


def test_exact_is_independent_of_threads_batch_and_layout():
    net = _net().eval()
    x = _input()
    torch.set_num_threads(1)
    single = net.exact(to_fixed(x))
    torch.set_num_threads(2)
    multi = net.exact(to_fixed(x))
    per_item = torch.cat([net.exact(to_fixed(x[i:i + 1])) for i in range(x.shape[0])])
    channels_last = net.exact(to_fixed(x).contiguous(memory_format=torch.channels_last))
    for other in (multi, per_item, channels_last):
        assert torch.equal(single, other)


def test_exact_survives_weight_reload_in_half_precision():
    net = _net().eval()
    state = {k: v.half().float() for k, v in net.state_dict().items()}
    a, b = _net(seed=5), _net(seed=6)
    a.load_state_dict(state)
    b.load_state_dict(state)
    x = to_fixed(_input())
    assert torch.equal(a.eval().exact(x), b.eval().exact(x))


def test_training_mode_invalidates_frozen_weights():
    net = _net().eval()
    x = to_fixed(_input())
    before = net.exact(x)
    with torch.no_grad():
        net.layers[0].weight.mul_(2)
    net.train().eval()
    assert not torch.equal(before, net.exact(x))


def test_unsupported_layers_are_refused():
    with pytest.raises(TypeError):
        ExactNet(nn.Conv2d(4, 4, 3), nn.GELU())
    with pytest.raises(TypeError):
        ExactNet(nn.Conv2d(4, 4, 3, groups=2))


@pytest.mark.parametrize("batch", [1, 2])
def test_gemm_and_conv_implementations_agree(batch):
    """im2col + matmul (addmm for one image, baddbmm for a batch: the bias in the product)
    gives the same integers as F.conv2d (strided, padded, 1x1, dilated)."""
    torch.manual_seed(3)
    net = ExactNet(nn.Conv2d(16, 24, 3, 2, 1), nn.ReLU(), nn.Conv2d(24, 20, 1),
                   nn.Conv2d(20, 8, 5, 1, 4, dilation=2), nn.ReLU(), nn.Conv2d(8, 6, 3, 1, 0)).eval()
    for layer in net.layers:        # biases large enough that dropping or doubling one shows
        if isinstance(layer, nn.Conv2d):
            nn.init.uniform_(layer.bias, -0.5, 0.5)
    x = to_fixed(_input(shape=(batch, 16, 23, 37)))
    try:
        results = []
        for impl in ("conv", "gemm"):
            set_conv_impl(impl, "cpu")
            results.append(net.exact(x))
    finally:
        set_conv_impl("conv", "cpu")
    assert results[0].shape == (batch, 6, 10, 17) and torch.equal(results[0], results[1])
    assert results[0].abs().max() > 0
    with pytest.raises(ValueError):
        set_conv_impl("winograd")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_exact_gpu_matches_cpu():
    net = _net().eval()
    x = to_fixed(_input(shape=(1, 16, 40, 60)))
    cpu = net.exact(x)
    for impl in ("gemm", "conv"):
        set_conv_impl(impl, "cuda")
        gpu = net.cuda().exact(x.cuda()).cpu()
        assert torch.equal(cpu, gpu), impl


def test_param_grid_maps():
    fx = torch.tensor([0.0, 1.0, -1.0, 100.5]) * 2 ** ACT_FRAC
    assert mean_from_fixed(fx).tolist() == [0.0, 1.0, -1.0, 100.5]
    # log2 scale -4 -> index 0; 0 -> 64; beyond the grid clamps
    k = scale_index_from_fixed(torch.tensor([-4.0, 0.0, 1.0, -10.0, 50.0]) * 2 ** ACT_FRAC)
    assert k.tolist() == [0, 64, 80, 0, NUM_SCALES - 1]
    assert math.isclose(float(SCALE_TABLE[64]), 1.0)
    w = weights_from_fixed(torch.tensor([[0.0, -1.0, -100.0]]) * 2 ** ACT_FRAC)
    assert w.tolist() == [[65536.0, 32768.0, 0.0]]


def test_leaky_relu_exact_form_is_dyadic_rounds_half_even_and_matches_integer_path():
    """LeakyReLU(0.01) runs as x * 655 / 2**16 on negatives (round half to even): close to the
    float net, the same integers across threads and layouts, and in the int64 IntegerNet."""
    from neuralcodec.entropy.exact import leaky_relu_exact, slope_numerator
    from neuralcodec.export.integer_path import IntegerNet

    assert slope_numerator(nn.LeakyReLU()) == 655 and slope_numerator(nn.LeakyReLU(0.2)) == 13107
    ties = torch.tensor([-32768.0, -98304.0, 7.0, 0.0])            # x * 655 / 2**16 = -327.5, -982.5
    assert leaky_relu_exact(ties, 655).tolist() == [-328.0, -982.0, 7.0, 0.0]
    torch.manual_seed(4)
    net = ExactNet(nn.ConvTranspose2d(16, 24, 5, 2, 2, output_padding=1), nn.LeakyReLU(),
                   nn.Conv2d(24, 20, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(20, 8, 1)).eval()
    x = _input(shape=(2, 16, 7, 9))
    ref = net(x.float()).double()
    out = from_fixed(net.exact(to_fixed(x)))
    assert (out - ref).norm() / ref.norm() < 1e-3
    torch.set_num_threads(1)
    single = net.exact(to_fixed(x))
    torch.set_num_threads(2)
    for other in (net.exact(to_fixed(x)), net.exact(to_fixed(x).contiguous(memory_format=torch.channels_last)),
                  torch.cat([net.exact(to_fixed(x[i:i + 1])) for i in range(2)])):
        assert torch.equal(single, other)
    integer = IntegerNet.from_exact(net)
    assert torch.equal(integer.exact(to_fixed(x)), single)
    tie_net = ExactNet(nn.LeakyReLU())
    assert torch.equal(IntegerNet.from_exact(tie_net).exact(ties.view(1, 4, 1, 1)),
                       tie_net.exact(ties.view(1, 4, 1, 1)))
