"""Building blocks shared by the codecs: convolutions and the analysis/synthesis/hyper transforms."""
from __future__ import annotations

import torch
from compressai.layers import GDN
from torch import nn
from torch.nn import functional as F

from neuralcodec.entropy.exact import ExactNet


def conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2)


def deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride, kernel // 2, output_padding=stride - 1)


class OutputDeconv(nn.ConvTranspose2d):
    """The synthesis' last layer (5x5, stride 2, few output channels). On the CPU at inference
    it runs in its polyphase form: one 3x3 convolution with 4x the outputs and a pixel shuffle,
    the same sums up to float rounding and ~2x faster with oneDNN than its transposed
    convolution. Parameters and state dict are those of ``nn.ConvTranspose2d``."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 5, 2, 2, output_padding=1)
        self._poly_key = self._poly = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training or torch.is_grad_enabled() or x.device.type != "cpu"
                or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()):
            return super().forward(x)
        return F.pixel_shuffle(F.conv2d(x, self._polyphase(), self.bias.repeat_interleave(4), padding=1), 2)

    def _polyphase(self) -> torch.Tensor:
        """(4 cout, cin, 3, 3) kernel: output phase (ry, rx) of channel c is channel 4c + 2ry + rx;
        input offset d in {-1, 0, 1} meets kernel tap 2 + r - 2d."""
        w = self.weight
        key = (w.data_ptr(), w._version, w.dtype)
        if key != self._poly_key:
            cin, cout = w.shape[:2]
            k = w.new_zeros(cout, 4, cin, 3, 3)
            for ry in (0, 1):
                for rx in (0, 1):
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ky, kx = 2 + ry - 2 * dy, 2 + rx - 2 * dx
                            if ky < 5 and kx < 5:
                                k[:, 2 * ry + rx, :, dy + 1, dx + 1] = w[:, :, ky, kx].t()
            memory = torch.channels_last if w.is_contiguous(memory_format=torch.channels_last) \
                else torch.contiguous_format
            self._poly = k.reshape(4 * cout, cin, 3, 3).contiguous(memory_format=memory)
            self._poly_key = key
        return self._poly


def analysis(n: int, m: int) -> nn.Sequential:
    """Image -> latent at 1/16 resolution (GDN transform, Ballé et al.)."""
    return nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))


def synthesis(n: int, m: int) -> nn.Sequential:
    """Latent -> image (inverse GDN transform)."""
    return nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                         deconv(n, n), GDN(n, inverse=True), OutputDeconv(n, 3))


class ResidualBottleneck(nn.Module):
    """x + (1x1 to n/2, ReLU, 3x3, ReLU, 1x1 back to n): ELIC's residual bottleneck block."""

    def __init__(self, n: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n // 2, 1), nn.ReLU(inplace=True), nn.Conv2d(n // 2, n // 2, 3, 1, 1),
                                  nn.ReLU(inplace=True), nn.Conv2d(n // 2, n, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def residual_analysis(n: int, m: int, blocks: tuple[int, int, int] = (3, 3, 3)) -> nn.Sequential:
    """Image -> latent at 1/16 (ELIC-style, without attention): 5x5 stride-2 convolutions with
    ``blocks[i]`` residual bottleneck blocks after each of the first three."""
    layers: list[nn.Module] = []
    cin = 3
    for k in blocks:
        layers += [conv(cin, n)] + [ResidualBottleneck(n) for _ in range(k)]
        cin = n
    return nn.Sequential(*layers, conv(n, m))


def residual_synthesis(n: int, m: int, blocks: tuple[int, int, int] = (3, 3, 3)) -> nn.Sequential:
    """Latent -> image, the mirror of :func:`residual_analysis` (blocks[0] at 1/8 resolution)."""
    layers: list[nn.Module] = []
    cin = m
    for k in blocks:
        layers += [deconv(cin, n)] + [ResidualBottleneck(n) for _ in range(k)]
        cin = n
    return nn.Sequential(*layers, OutputDeconv(n, 3))


def hyper_analysis(m: int, n: int) -> nn.Sequential:
    """Latent -> hyper-latent at 1/4 of the latent resolution (encoder only, float)."""
    return nn.Sequential(conv(m, n, 3, 1), nn.LeakyReLU(inplace=True), conv(n, n),
                         nn.LeakyReLU(inplace=True), conv(n, n))


def hyper_synthesis(n: int, hidden: int, out: int) -> ExactNet:
    """Hyper-latent -> entropy parameters/features at latent resolution (integer-exact)."""
    return ExactNet(deconv(n, hidden, 3), nn.ReLU(), deconv(hidden, hidden * 3 // 2, 3), nn.ReLU(),
                    nn.Conv2d(hidden * 3 // 2, out, 1))


def pointwise_net(cin: int, hidden: tuple[int, ...], cout: int) -> ExactNet:
    """1x1 convolutions with ReLU (entropy-parameter aggregation, integer-exact)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Conv2d(cin, width, 1), nn.ReLU()]
        cin = width
    return ExactNet(*layers, nn.Conv2d(cin, cout, 1))
