"""The codec contract (codecs/base.py), the registry's discovery and the one varint helper."""
from __future__ import annotations

import pytest

from neuralcodec.codecs import registry
from neuralcodec.codecs.base import LatentImageCodec, StreamImageCodec, register_codec
from neuralcodec.errors import BitstreamError
from neuralcodec.io.varint import encode_varint, read_varint


def test_every_registered_codec_is_one_of_the_two_kinds():
    assert set(registry.available()) >= {"elic", "factorized", "gmm-ctx", "hyperprior", "trit-plane"}
    for name in registry.available():
        cls = registry.CODECS[name]
        assert issubclass(cls, LatentImageCodec) != issubclass(cls, StreamImageCodec), name
    assert issubclass(registry.CODECS["trit-plane"], StreamImageCodec)
    model = registry.create("hyperprior", n=8, m=12)
    assert model.latent_channels == 12


def test_register_codec_refuses_a_second_codec_of_a_name_and_unnamed_classes():
    hyper = registry.CODECS["hyperprior"]
    with pytest.raises(TypeError, match="two codecs"):
        register_codec(type("Other", (hyper,), {}))
    with pytest.raises(TypeError):
        register_codec(type("Nameless", (hyper,), {"name": ""}))
    assert registry.CODECS["hyperprior"] is hyper


def test_a_latent_codec_must_implement_the_latent_methods():
    class Half(LatentImageCodec):
        name = "half"

        def analyse(self, x, quality):
            return x

    with pytest.raises(TypeError, match="abstract"):
        Half()


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint_round_trip(n):
    data = b"\x07" + encode_varint(n) + b"tail"
    assert read_varint(data, 1) == (n, len(data) - 4)


def test_varint_truncated_and_overlong():
    assert read_varint(encode_varint(2**40)[:-1]) is None
    with pytest.raises(BitstreamError, match="corrupt trit-plane stream: bad varint"):
        read_varint(b"\xff" * 12, 0, "trit-plane stream")
