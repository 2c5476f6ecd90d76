"""Building blocks shared by the codecs: convolutions and the analysis/synthesis/hyper transforms."""
from __future__ import annotations

from compressai.layers import GDN
from torch import nn

from neuralcodec.entropy.exact import ExactNet


def conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2)


def deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride, kernel // 2, output_padding=stride - 1)


def analysis(n: int, m: int) -> nn.Sequential:
    """Image -> latent at 1/16 resolution (GDN transform, Ballé et al.)."""
    return nn.Sequential(conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m))


def synthesis(n: int, m: int) -> nn.Sequential:
    """Latent -> image (inverse GDN transform)."""
    return nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
                         deconv(n, n), GDN(n, inverse=True), deconv(n, 3))


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
