"""video.compare: variants side by side on the same clips, validated with real bitstreams."""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

warnings.filterwarnings("ignore")

from neuralcodec.video import compare  # noqa: E402
from neuralcodec.video.rd import p_frame_cost  # noqa: E402
from neuralcodec.video.weights import load, shipped_weights  # noqa: E402

SHIPPED = shipped_weights()


def _folder(path, n, w, h, seed):
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h + 2 * n, w + 2 * n, 3), dtype=np.uint8)
    for t in range(n):
        Image.fromarray(base[t:t + h, 2 * t:2 * t + w]).save(path / f"f{t:03d}.png")
    return path


def test_compare_runs_validates_and_exports(tmp_path, capsys):
    train = _folder(tmp_path / "train" / "clip", 5, 80, 64, 0)
    val = _folder(tmp_path / "val" / "held", 3, 64, 48, 1)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"name": "base"}, {"name": "ms2", "config": {"ctx_scales": 2}, "frames": 2,
                                                    "lr": 1e-4, "init": str(SHIPPED), "init_partial": True}]))
    out = tmp_path / "out"
    rc = compare.main(["--spec", str(spec), "--video", str(train.parent), "--out", str(out), "--steps", "2",
                       "--batch-size", "1", "--frames", "3", "--crop", "64", "--synthetic", "0",
                       "--warmup-steps", "1", "--log-every", "1", "--val", str(val.parent), "--val-frames", "3",
                       "--val-qualities", "2", "6", "--val-fractions", "0.5", "--export", "--device", "cpu",
                       "--precision", "bf16"])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["steps_done"] == 2 and set(doc["variants"]) == {"base", "ms2"}
    assert doc["meta"]["precision"] == "bf16" and doc["meta"]["compile"] is False
    for name, v in doc["variants"].items():
        assert [e["step"] for e in v["log"]] == [1, 2]
        assert [e["step"] for e in v["validation"]] == [1, 2]          # at half of the run, at the end
        clip = v["validation"][-1]["clips"]["held"]
        assert [r["kinds"] for r in clip["rows"]] == ["IPP", "IPP"] and clip["frames"] == 3
        assert clip["rows"][0]["bpp"] < clip["rows"][1]["bpp"]
        assert len(clip["p_frame_cost"]["p_points"]) == 2 and len(clip["p_frame_cost"]["i_points"]) == 3  # + q1
        assert doc["meta"]["train_seconds"][name] > 0
    assert doc["variants"]["ms2"]["frames"] == 2 and doc["variants"]["base"]["frames"] == 3
    assert doc["bd_rate_vs_reference"]["base"]["mean"] == pytest.approx(0.0, abs=1e-9)
    model = load(None, out / "ms2.safetensors", "cpu")
    assert model.config["ctx_scales"] == 2
    err = capsys.readouterr().err
    assert "final validation" in err
    assert re.search(r"init: \d+ of \d+ tensors from ", err)       # the partial start from shipped weights


def test_compare_spec_errors(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([{"name": "a", "codec": "video-rt"}]))
    args = ["--spec", str(spec), "--out", str(tmp_path / "o"), "--steps", "1", "--device", "cpu"]
    assert compare.main(args) == 1
    assert capsys.readouterr().err.startswith("neuralcodec: error:")
    spec.write_text(json.dumps([{"name": "a", "config": {"nonsense": 1}}]))
    assert compare.main(args) == 1
    assert "bad video-rt options" in capsys.readouterr().err
    spec.write_text(json.dumps([{"name": "a", "frames": 9}]))
    assert compare.main(args + ["--frames", "3"]) == 1
    assert "frames must be" in capsys.readouterr().err


def test_p_frame_cost_ratio():
    """A P-frame curve at a quarter of the I-frame rate for the same PSNR has a ratio of 0.25;
    curves without a PSNR overlap give no ratio and say why."""
    def rows(kind, pts):
        return [{"kinds": kind, "frame_bits": [b * 100], "frame_psnr": [d]} for b, d in pts]
    intra = rows("I", [(1.0, 30.0), (2.0, 33.0), (4.0, 36.0)])
    gop = [{"kinds": "IP", "frame_bits": [400, b * 100], "frame_psnr": [40.0, d]} for b, d in
           [(0.25, 30.0), (0.5, 33.0), (1.0, 36.0)]]
    cost = p_frame_cost(gop, intra, 100)
    assert cost["ratio"] == pytest.approx(0.25, rel=1e-6)
    far = [{"kinds": "IP", "frame_bits": [400, b * 100], "frame_psnr": [40.0, d]} for b, d in [(0.1, 20), (0.2, 22)]]
    cost = p_frame_cost(far, intra, 100)
    assert cost["ratio"] is None and "undefined" in cost["note"]
    assert cost["best_p_over_cheapest_i"] == pytest.approx(0.2) and cost["psnr_gap_db"] == pytest.approx(8.0)


def test_rate_warmup_weights_the_rate_term():
    """Distortion first: the rate term's weight ramps 0 -> 1 over the warm-up, and at weight 0
    the loss is the distortion term alone (the reported rate is unchanged)."""
    from neuralcodec.video.train import clip_loss, rate_weight
    assert [rate_weight(s, 4) for s in (0, 2, 4, 9)] == [0.0, 0.5, 1.0, 1.0]
    assert rate_weight(0, 0) == 1.0
    model = load(None, SHIPPED, "cpu")
    clips = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    quality = torch.tensor([4.0])
    runs = {}
    for w in (0.0, 1.0):
        torch.manual_seed(1)          # same quantisation noise in both runs
        runs[w] = clip_loss(model, clips, quality, rate_scale=w)
    assert float(runs[0.0]["bpp"]) == pytest.approx(float(runs[1.0]["bpp"]))
    assert float(runs[1.0]["loss"] - runs[0.0]["loss"]) == pytest.approx(float(runs[1.0]["bpp"]), abs=1e-4)


@pytest.mark.parametrize("name", ["video_variants_round1.json", "video_variants_round2.json",
                                  "video_variants_round9.json", "video_variants_round10.json"])
def test_shipped_variant_specs_read_and_build(name):
    """The variant files of the GPU rounds parse, and each variant's model builds."""
    from pathlib import Path

    from neuralcodec.video.weights import create
    root = Path(__file__).resolve().parents[1]
    variants = compare.read_spec(str(root / "scripts" / name))
    assert len({v.name for v in variants}) == len(variants) >= 2
    intra = load(None, SHIPPED, "cpu").intra
    for v in variants:
        assert v.init == "" or (root / v.init).is_file()
        create(intra_model=intra, **v.config)


def test_fast_clip_loss_matches_clip_loss():
    """FastClipLoss: eager fp32 is clip_loss exactly; bf16 autocast stays close; the compiled
    unroll gives the eager loss and gradients (with rounding: a compiled graph draws other
    random numbers), also when the rate scale changes."""
    from neuralcodec.video.train import FastClipLoss, clip_loss
    model = load(None, SHIPPED, "cpu").train()
    clips = torch.rand(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    quality = torch.tensor([5.0])

    def run(fn, scale):
        torch.manual_seed(3)              # the same quantisation noise each time
        model.zero_grad(set_to_none=True)
        res = fn(model, clips, quality, 0, scale)
        res["loss"].backward()
        return float(res["loss"]), model.g_a[0].weight.grad.clone()

    ref, ref_grad = run(clip_loss, 0.5)
    eager, eager_grad = run(FastClipLoss(), 0.5)
    assert eager == ref and torch.equal(eager_grad, ref_grad)
    bf16, _ = run(FastClipLoss(bf16=True), 0.5)
    assert bf16 == pytest.approx(ref, rel=0.05)
    warnings = []
    fast = FastClipLoss(compile=True, warn=warnings.append)
    model.eval()          # rounding instead of noise: compiled graphs draw other random numbers
    for scale in (0.5, 0.75):
        got, grad = run(fast, scale)
        want, want_grad = run(clip_loss, scale)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4)
        assert torch.allclose(grad, want_grad, rtol=1e-3, atol=1e-5)
    assert fast.compiled and not warnings


def test_fast_clip_loss_refuses_an_unknown_compile_mode():
    from neuralcodec.errors import InputError
    from neuralcodec.video.train import FastClipLoss
    with pytest.raises(InputError, match="compile mode must be one of"):
        FastClipLoss(compile=True, compile_mode="fastest")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_fast_clip_loss_with_cuda_graphs_matches_eager():
    """reduce-overhead (CUDA graphs) gives the eager loss over steps whose outputs are kept."""
    from neuralcodec.video.train import FastClipLoss, clip_loss
    model = load(None, SHIPPED, "cuda").eval()
    clips = torch.rand(2, 3, 3, 64, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    quality = torch.tensor([3.0, 6.0], device="cuda")
    warnings = []
    fast = FastClipLoss(compile=True, compile_mode="reduce-overhead", warn=warnings.append)
    kept = [fast(model, clips, quality, 0, s)["loss"] for s in (0.5, 0.5, 0.5, 1.0)]
    for s, got in zip((0.5, 0.5, 0.5, 1.0), kept):
        assert float(got) == pytest.approx(float(clip_loss(model, clips, quality, 0, s)["loss"]), rel=1e-4)
    assert fast.compiled and not warnings
