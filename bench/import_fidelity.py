#!/usr/bin/env python3
"""Imported CompressAI models against CompressAI itself, on real crops.

    python bench/import_fidelity.py [--archs bmshj2018-factorized bmshj2018-hyperprior mbt2018-mean ...]
        [--n 128 --m 192] [--train-steps 300] [--lmbda 0.0130] [--lr 5e-4] [--images 8] [--crop 256]
        [--out DIR] [--reuse]

No zoo file can be downloaded here, so each architecture is built with CompressAI, trained
briefly on BSDS500 crops (``--train-steps`` of 4 crops of 128x128; 0 keeps the random weights), updated, and saved
in both checkpoint formats (plain state dict as the zoo's ``*.pth.tar``, and
``{"state_dict", "epoch"}`` as ``examples/train.py`` writes). Both are imported; then for
each Kodak crop CompressAI's own ``compress``/``decompress`` is compared with neuralcodec's
encode/decode of the imported model: PSNR of both reconstructions, and CompressAI's string
bytes against the entropy-coded payload (and the whole container) of ours.
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr  # noqa: E402
from neuralcodec.codecs.compressai_checkerboard import CHECKERBOARD_ARCHS  # noqa: E402
from neuralcodec.codecs.compressai_checkerboard import compressai_model as checkerboard_model  # noqa: E402
from neuralcodec.container import unpack  # noqa: E402
from neuralcodec.importers.compressai import import_compressai  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ZOO_ARCHS = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean")
ARCHS = ZOO_ARCHS + CHECKERBOARD_ARCHS


def compressai_model(arch: str, n: int, m: int):
    """A fresh CompressAI model (ELIC: CompressAI's default groups 16, 16, 32, 64, M - 128;
    Cheng2020: M = N)."""
    from compressai.models import FactorizedPrior, MeanScaleHyperprior, ScaleHyperprior

    if arch in CHECKERBOARD_ARCHS:
        return checkerboard_model(arch, n, m, [16, 16, 32, 64, m - 128])
    cls = {"bmshj2018-factorized": FactorizedPrior, "bmshj2018-hyperprior": ScaleHyperprior,
           "mbt2018-mean": MeanScaleHyperprior}[arch]
    return cls(n, m)


def crops(files, size: int, count: int, rng) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for f in files[:count]:
        img = np.asarray(Image.open(f).convert("RGB"))
        if not size:                    # the whole image (Kodak: 768x512, multiples of 64)
            out.append(img)
            continue
        top = int(rng.integers(0, img.shape[0] - size + 1))
        left = int(rng.integers(0, img.shape[1] - size + 1))
        out.append(np.ascontiguousarray(img[top:top + size, left:left + size]))
    return out


def train(net, steps: int, lmbda: float, lr: float, rng, log) -> None:
    """CompressAI's examples/train.py objective (lambda * 255^2 * MSE + bpp, aux loss), briefly."""
    if not steps:
        return
    pool = crops(sorted((DATA / "train" / "bsds500").glob("*.jpg")), 128, 200, rng)
    batch = [torch.tensor(c).permute(2, 0, 1).float() / 255 for c in pool]
    main = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    opt, aux_opt = torch.optim.Adam(main, lr), torch.optim.Adam(aux, 1e-3)
    net.train()
    t0 = time.perf_counter()
    for step in range(steps):
        x = torch.stack([batch[int(i)] for i in rng.integers(0, len(batch), 4)])
        out = net(x)
        bpp = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values()) / (x.numel() / 3)
        loss = lmbda * 255 ** 2 * ((out["x_hat"] - x) ** 2).mean() + bpp
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        aux_opt.zero_grad()
        net.aux_loss().backward()
        aux_opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"  step {step}: loss {float(loss):.3f}, bpp {float(bpp):.3f} ({time.perf_counter() - t0:.0f} s)")
    net.eval()


def reference(net, img: np.ndarray) -> tuple[np.ndarray, int]:
    """CompressAI's reconstruction (uint8) and string bytes of one image."""
    x = torch.tensor(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = net.compress(x)
        rec = net.decompress(out["strings"], out["shape"])["x_hat"]
    pixels = (rec[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return pixels, sum(len(s) for strings in out["strings"] for s in strings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ZOO_ARCHS), choices=ARCHS,
                        help="default: the zoo architectures (ELIC needs --m above 128)")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--m", type=int, default=192)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--lmbda", type=float, default=0.0130)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--images", type=int, default=8, help="Kodak images (one crop each)")
    parser.add_argument("--crop", type=int, default=256, help="crop side (0: whole images)")
    parser.add_argument("--out", default="bench_import_fidelity", help="folder for the checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="use the checkpoints already in --out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    images = crops(sorted((DATA / "kodak").glob("kodim*.png")), args.crop, args.images, rng)
    how = "checkpoints reused where present" if args.reuse else \
        f"{args.train_steps} training steps at lambda {args.lmbda}"
    print(f"{len(images)} Kodak {f'crops of {args.crop}x{args.crop}' if args.crop else 'images'}; N={args.n}, "
          f"M={args.m}, {how}, {torch.get_num_threads()} threads")
    for arch in args.archs:
        torch.manual_seed(args.seed)
        net = compressai_model(arch, args.n, args.m)
        zoo, trained = out / f"{arch}.pth.tar", out / f"{arch}-train.pth.tar"
        print(arch)
        if args.reuse and zoo.is_file():
            net.load_state_dict(torch.load(zoo, weights_only=True))
            print(f"  reusing {zoo}")
        else:
            train(net, args.train_steps, args.lmbda, args.lr, rng, print)
            net.update(force=True)
            torch.save(net.state_dict(), zoo)
            torch.save({"epoch": args.train_steps, "state_dict": net.state_dict()}, trained)
        net.eval()
        refs = [reference(net, img) for img in images]
        for path in (zoo, trained):
            codec = import_compressai(arch, [path])
            gaps, ratios, whole = [], [], []
            for img, (ref, ref_bytes) in zip(images, refs):
                data = encode_with_model(codec, img, 1.0)
                ours = decode_with_model(codec, data)
                payload = sum(len(s.data) for s in unpack(data)[1])
                gaps.append(psnr(ours, img) - psnr(ref, img))
                ratios.append(payload / ref_bytes - 1)
                whole.append(len(data) / ref_bytes - 1)
            print(f"  {path.name}: PSNR ours - CompressAI: max |gap| {max(map(abs, gaps)):.4f} dB "
                  f"(mean {np.mean(gaps):+.4f}); payload vs CompressAI strings {100 * min(ratios):+.2f}% .. "
                  f"{100 * max(ratios):+.2f}% (mean {100 * np.mean(ratios):+.2f}%); whole container "
                  f"{100 * np.mean(whole):+.2f}% (mean)")
        print(f"  CompressAI: PSNR {np.mean([psnr(r, i) for (r, _), i in zip(refs, images)]):.2f} dB, "
              f"bpp {np.mean([8 * b / i.shape[0] / i.shape[1] for (_, b), i in zip(refs, images)]):.3f} (means)")

if __name__ == "__main__":
    main()
