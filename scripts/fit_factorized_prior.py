"""Fit the `factorized` codec's learned prior to a trained codec's frozen transforms.

The analysis/synthesis transforms and quality gains come from ``--from`` (e.g. the shipped
`hyperprior`, whose transforms have the factorized codec's shapes); the per-channel density
model is fitted by maximum likelihood to the noisy latents of random training crops at random
qualities (the rate term of the RD loss; with the transforms frozen, the distortion term does
not depend on the prior). Cheap enough for a CPU: one analysis pass per crop, then the
density model alone. Writes shipping weights.

    python scripts/fit_factorized_prior.py --from src/neuralcodec/weights/hyperprior.safetensors \
        --data packs/train_full --crops 600 --steps 3000 -o factorized.safetensors
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuralcodec.codecs import registry  # noqa: E402
from neuralcodec.train.data import build_bank  # noqa: E402
from neuralcodec.train.loop import export_weights, load_init  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="source", required=True, help="weights whose transforms to take")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--crops", type=int, default=600, help="random crops analysed (default 600)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3000, help="density-model optimiser steps")
    ap.add_argument("--batch", type=int, default=16, help="crops per density-model step (default 16)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = registry.create("factorized")
    loaded = load_init(model, args.source, partial=True)
    print(f"{loaded} of {len(model.state_dict())} tensors from {args.source}", flush=True)
    model.eval()
    bank = build_bank(args.data, args.crop, torch.device("cpu"), workers=2, log=print)
    t0 = time.monotonic()
    latents = []
    with torch.no_grad():
        for i in range(0, args.crops, 8):
            b = bank.batch(args.seed, i, min(8, args.crops - i))
            latents.append(model.analyse(b.x.contiguous(), b.quality))
    y = torch.cat(latents)
    print(f"analysed {len(y)} crops in {time.monotonic() - t0:.0f} s; latent {tuple(y.shape[1:])}", flush=True)
    prior = model.latent.prior
    prior.train()
    main_params = [p for n, p in prior.named_parameters() if not n.endswith("quantiles")]
    aux = [p for n, p in prior.named_parameters() if n.endswith("quantiles")]
    opt, aux_opt = torch.optim.Adam(main_params, lr=args.lr), torch.optim.Adam(aux, lr=1e-2)
    pixels = y.shape[0] * (y.shape[2] * 16) * (y.shape[3] * 16)
    for step in range(args.steps):
        lr = args.lr * 0.5 * (1 + torch.cos(torch.tensor(step / args.steps * torch.pi)).item())
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, len(y), (args.batch,))
        _, lik = prior(y[idx])
        bits = -torch.log2(lik).sum()
        opt.zero_grad()
        bits.backward()
        opt.step()
        aux_opt.zero_grad()
        prior.aux_loss().backward()
        aux_opt.step()
        if step % 200 == 0 or step == args.steps - 1:
            with torch.no_grad():
                _, lik_all = prior(y)
                bpp = float(-torch.log2(lik_all).sum()) / pixels
            print(f"step {step}: {bpp:.4f} bpp over all crops (noisy latents, mean over qualities)", flush=True)
    info = {"source": "scripts/fit_factorized_prior.py", "transforms_from": str(args.source),
            "crops": len(y), "steps": args.steps, "data": args.data}
    out = export_weights(model, args.output, info, "fp16", "factorized", model.config)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
