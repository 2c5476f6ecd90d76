"""Hostile inputs (issue 17) for the codecs main gained beside it: `elic` and the codecs imported
from CompressAI. Their weights load through the metadata check (elic's options reach gmm-ctx's
arguments; an imported codec's config is a list of levels), and a damaged stream decoded by
the CLI gives one error line and exit 1, never an internal error: truncations, records
dropped, payloads damaged with the container CRC recomputed, header edits (a huge picture, a
wrong tile count, an imported stream's quality that is none of its levels)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import make_image
from neuralcodec import container as C
from neuralcodec.cli import main

CODECS = ("elic", "compressai-mbt2018-mean", "compressai-elic2022-official")


def _weights(name: str, folder) -> "Path":  # noqa: F821
    """A weights file of ``name`` with random weights, as the CLI loads it."""
    from neuralcodec.codecs.registry import create
    from neuralcodec.codecs.weights import save_weights

    path = folder / f"{name}.safetensors"
    if name == "elic":
        from test_codecs import ELIC_SMALL
        torch.manual_seed(3)
        model = create("elic", **ELIC_SMALL).eval()
        model.update()
    else:
        from test_import import compressai_net
        from neuralcodec.importers.compressai import import_compressai
        arch = name.removeprefix("compressai-")
        zoo = folder / f"{arch}.pth.tar"
        torch.save(compressai_net(arch).state_dict(), zoo)
        model = import_compressai(arch, [zoo], labels=[3.0])
    save_weights(model, path, dtype="fp32", info=getattr(model, "weights_info", None))
    return path


@pytest.fixture(scope="module", params=CODECS)
def coded(request, tmp_path_factory):
    """(weights file, a valid 64x64 stream of it) per codec."""
    from neuralcodec.codecs.api import encode_with_model
    from neuralcodec.codecs.registry import load_model

    path = _weights(request.param, tmp_path_factory.mktemp(request.param))
    model = load_model(None, path)          # the metadata check must accept what save wrote
    return path, encode_with_model(model, make_image(64, 64, seed=4), 3.0)


def _decode(capsys, tmp_path, weights, data: bytes) -> tuple[int, str]:
    src = tmp_path / "in.ncb"
    src.write_bytes(data)
    code = main(["decode", str(src), "-o", str(tmp_path / "out.png"), "--weights", str(weights),
                 "--device", "cpu"])
    return code, capsys.readouterr().err


def _one_error(code: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("neuralcodec: error: "), (code, err)


def _rebuilt(header, subs) -> bytes:
    return C.pack(header, [C.Substream(s.name, s.data, s.truncatable) for s in subs])


def test_valid_stream_decodes(coded, tmp_path, capsys):
    weights, data = coded
    code, err = _decode(capsys, tmp_path, weights, data)
    assert code == 0, err


def test_structural_damage_is_one_error(coded, tmp_path, capsys):
    weights, data = coded
    header, subs = C.unpack(data)
    cases = [data[:n] for n in (20, len(data) // 4, len(data) // 2, len(data) - 1)]
    cases += [_rebuilt(header, subs[:i] + subs[i + 1:]) for i in range(len(subs))]     # a record dropped
    cases += [_rebuilt(header, subs + [subs[-1]])]                                     # one twice
    cases += [_rebuilt(dataclasses.replace(header, width=16384, height=16384), subs),  # a huge picture
              _rebuilt(dataclasses.replace(header, params={"tiles": 2}), subs)]
    if header.codec.startswith("compressai-"):                                          # not a level
        cases.append(_rebuilt(dataclasses.replace(header, quality=5.0), subs))
    for case in cases:
        _one_error(*_decode(capsys, tmp_path, weights, case))


def test_payload_damage_never_escapes(coded, tmp_path, capsys):
    """Coder payloads carry no inner checksum (docs/bitstream.md): damage behind a recomputed
    CRC decodes to some picture or is one error, never an internal error."""
    weights, data = coded
    header, subs = C.unpack(data)
    rng = np.random.default_rng(11)
    errors = 0
    for i, sub in enumerate(subs):
        payload = bytearray(sub.data)
        flipped = bytearray(payload)
        for pos in rng.integers(0, len(payload), 3):
            flipped[pos] ^= 0xFF
        for damaged in (bytes(flipped), bytes(payload[:len(payload) // 2]), bytes(payload) + b"\x00" * 9):
            changed = subs[:i] + [dataclasses.replace(sub, data=damaged)] + subs[i + 1:]
            code, err = _decode(capsys, tmp_path, weights, _rebuilt(header, changed))
            if code:
                _one_error(code, err)
                errors += 1
    assert errors                # cut and padded coder streams are noticed


def test_fake_layout_is_the_real_layout():
    """The weights check's fake-tensor build gives every codec's real state-dict layout, the
    imported checkerboard codecs too (their CompressAI constructors read channel ramps back
    as numbers)."""
    from neuralcodec.codecs.fake_build import fake_layout
    from neuralcodec.codecs.registry import CODECS
    from neuralcodec.video.weights import VIDEO_CODECS

    builds = {name: (lambda cls=cls: cls()) for name, cls in {**CODECS, **VIDEO_CODECS}.items()}
    elic = CODECS["compressai-elic2022-official"]
    builds["elic2022, a small level"] = lambda: elic(levels=[{"label": 2, "n": 32, "m": 160,
                                                              "groups": [16, 16, 32, 64, 32]}])
    for name, build in builds.items():
        real = {k: (tuple(v.shape), v.dtype) for k, v in build().state_dict().items()}
        assert fake_layout(build) == real, name


def test_oversized_imported_config_is_refused_unbuilt(tmp_path):
    """A level config of 20000 x 30000 channels (a model of tens of GB) fails the layout
    check with one ModelError; only its fake-tensor twin is built."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from neuralcodec.codecs.registry import load_model
    from neuralcodec.errors import ModelError

    src = _weights("compressai-elic2022-official", tmp_path)
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    meta["config"] = json.dumps({"levels": [{"label": 3.0, "n": 20000, "m": 30000,
                                             "groups": [16, 16, 32, 64, 29872]}]})
    bomb = tmp_path / "bomb.safetensors"
    save_file(load_file(str(src)), str(bomb), metadata=meta)
    with pytest.raises(ModelError, match="has shape .* needs"):
        load_model(None, bomb)
