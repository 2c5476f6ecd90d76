"""Validation on whole images: real bitstreams through ``neuralcodec.codecs.api`` when it
exists, else the differentiable rate estimate (with a warning)."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch

from neuralcodec.entropy.likelihoods import bits_per_pixel


def set_tf32(enabled: bool) -> bool:
    """Switch TF32 matmuls/convolutions on or off; returns the previous matmul setting."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):  # torch >= 2.9: only the new API (mixing both raises)
        before = m.fp32_precision == "tf32"
        m.fp32_precision = "tf32" if enabled else "ieee"
        if hasattr(torch.backends.cudnn, "conv"):
            torch.backends.cudnn.conv.fp32_precision = "tf32" if enabled else "ieee"
    else:
        before = m.allow_tf32
        m.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    return before


def _load_api():
    try:
        from neuralcodec.codecs import api
    except ImportError:
        return None
    if not (hasattr(api, "encode_with_model") and hasattr(api, "decode_with_model")):
        return None
    return api


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _pad_to(x: torch.Tensor, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


@torch.no_grad()
def estimate_image(model, img: np.ndarray, quality: float, device) -> tuple[float, float]:
    """(bpp, PSNR) of one uint8 HxWx3 image from the model's likelihoods and rounded output."""
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
    out = model(_pad_to(x, int(getattr(model, "stride", 64))), torch.tensor([quality], device=device))
    bpp = float(bits_per_pixel(out["likelihoods"], h * w)[0])
    rec = out["x_hat"][0, :, :h, :w].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return bpp, _psnr(img, rec)


def validate(model: torch.nn.Module, images: list[np.ndarray], qualities: list[float],
             device: torch.device, warn=None) -> dict:
    """Mean bpp and PSNR per quality over ``images``. Runs on a copy of the model (after
    ``update()`` for the real coder) and leaves every random generator untouched. When the
    real coder fails (a model without ``compress``, or an error), the differentiable estimate
    is used and the error is reported in ``bitstream_error``."""
    api = _load_api()
    say = warn or warnings.warn
    if api is None:
        say("neuralcodec.codecs.api is not available: validation uses the differentiable rate "
            "estimate, not real bitstreams")
    cuda = torch.device(device).type == "cuda"
    tf32_before = set_tf32(False) if cuda else False  # validate at full fp32 precision
    try:
        return _validate(model, images, qualities, device, api, say, cuda)
    finally:
        if cuda:
            set_tf32(tf32_before)


def _validate(model, images, qualities, device, api, say, cuda) -> dict:
    with torch.random.fork_rng(devices=[device] if cuda else []):
        m = copy.deepcopy(model).eval()
        error = None
        if api is not None:
            try:
                m.update()
                results = _run(m, images, qualities, device, api)
            except Exception as exc:  # no coder yet (NotImplementedError) or a coder bug: keep training
                error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                say(f"real-bitstream validation of {type(model).__name__} failed ({error}); "
                    "validation uses the differentiable rate estimate")
                api = None
        if api is None:
            results = _run(m, images, qualities, device, None)
    del m
    res = {"mode": "bitstream" if api is not None else "estimate", "images": len(images), "results": results}
    if error:
        res["bitstream_error"] = error
    return res


def _run(m, images, qualities, device, api) -> dict:
    results = {}
    for q in qualities:
        bpps, psnrs = [], []
        for img in images:
            if api is not None:
                data = api.encode_with_model(m, img, float(q), device)
                rec = np.asarray(api.decode_with_model(m, data, device))
                if rec.shape != img.shape:
                    from neuralcodec.errors import ModelError
                    raise ModelError(f"validation: decoded shape {rec.shape} != input {img.shape}")
                bpps.append(8.0 * len(data) / (img.shape[0] * img.shape[1]))
                psnrs.append(_psnr(img, rec))
            else:
                b, p = estimate_image(m, img, float(q), device)
                bpps.append(b)
                psnrs.append(p)
        results[f"{q:g}"] = {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))}
    return results
