"""Training of ``video-rt`` P-frame networks on short clips.

Clips come from real video (folders of frames, or video files decoded with PyAV) and from
synthetic camera motion over still images (random pans and zooms rendered with bilinear
resampling). Each training clip is coded as I P P ...: the I-frame with the frozen image
codec (eval mode, rounding), the P-frames unrolled with the propagated context and buffer,
the loss the mean over P-frames of lambda(q_t) * 255^2 * MSE + bpp, with q_t the base
quality plus the frame's hierarchical offset.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, rd_lambda
from neuralcodec.errors import InputError, reason
from neuralcodec.train import distributed as D
from neuralcodec.train import engine
from neuralcodec.train.configs import VideoTrainConfig
from neuralcodec.train.data import fit_to_crop, load_image
from neuralcodec.train.files import IMAGE_SUFFIXES, find_images
from neuralcodec.entropy.likelihoods import bits_per_pixel
from neuralcodec.train.loss import lr_at, psnr_from_mse
from neuralcodec.video.model import I_OFFSET, P_OFFSETS

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".y4m", ".avi")


# ----------------------------------------------------------------- data
def _read_video_file(path: Path, scale: float, max_frames: int) -> list[np.ndarray]:
    import av

    from neuralcodec.video.io import frame_to_rgb
    out = []
    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                if len(out) >= max_frames:
                    break
                if scale > 1:
                    frame = frame.reformat(width=round(frame.width / scale) // 2 * 2,
                                           height=round(frame.height / scale) // 2 * 2)
                out.append(frame_to_rgb(frame))
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot read video {path}: {reason(exc, filename=False)}") from None
    return out


def find_clips(dirs: list[str], scale: float, max_frames: int) -> list[tuple[str, list[np.ndarray]]]:
    """(name, frames) of every frame folder (images directly inside) and video file under ``dirs``."""
    clips = []
    try:
        import av  # noqa: F401
        have_av = True
    except ImportError:                 # e.g. a bare GPU machine: frame folders only
        have_av = False
    for d in dirs:
        root = Path(d)
        if not root.exists():
            raise InputError(f"video data {root} does not exist")
        candidates = [root] if root.is_file() else [root] + sorted(p for p in root.rglob("*"))
        for p in candidates:
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                if have_av:
                    clips.append((str(p), _read_video_file(p, scale, max_frames)))
                else:
                    print(f"skipping {p}: PyAV is not installed", file=sys.stderr)
            elif p.is_dir():
                files = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
                if len(files) >= 2:
                    clips.append((str(p), [load_image(q) for q in files[:max_frames]]))
    clips = [(n, f) for n, f in clips if len(f) >= 2]
    if dirs and not clips:
        raise InputError(f"no video clips (frame folders or video files) in {', '.join(dirs)}")
    return clips


class ClipSampler:
    """Batches of clips (B, T, 3, C, C) in [0, 1] from real clips and synthetic motion over
    stills; the draw of step ``s`` depends only on ``(seed, s)``."""

    def __init__(self, clips, stills, crop: int, frames: int, synthetic: float, device):
        self.crop, self.frames, self.device = crop, frames, torch.device(device)
        self.clips = [torch.from_numpy(np.stack([fit_to_crop(f, crop, "pad") for f in fr]))
                      .permute(0, 3, 1, 2).contiguous().to(self.device) for _, fr in clips]
        self.clips = [c for c in self.clips if c.shape[0] >= 2]
        self.stills = [torch.from_numpy(fit_to_crop(im, crop, "pad")).permute(2, 0, 1).contiguous()
                       .to(self.device) for im in stills]
        if not self.clips and not self.stills:
            raise InputError("no training data: give --video and/or --images")
        self.synthetic = synthetic if self.clips else 1.0
        if not self.stills:
            self.synthetic = 0.0

    def _real(self, g):
        clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=g))]
        n, _, h, w = clip.shape
        step = 1 + int(torch.randint(2, (1,), generator=g)) if n >= 2 * self.frames else 1
        span = min(n, (self.frames - 1) * step + 1)
        t0 = int(torch.randint(n - span + 1, (1,), generator=g))
        idx = [min(t0 + i * step, n - 1) for i in range(self.frames)]
        y = int(torch.randint(h - self.crop + 1, (1,), generator=g))
        x = int(torch.randint(w - self.crop + 1, (1,), generator=g))
        out = clip[idx, :, y:y + self.crop, x:x + self.crop]
        if torch.rand(1, generator=g) < 0.5:
            out = out.flip(-1)
        if torch.rand(1, generator=g) < 0.5:     # play backwards
            out = out.flip(0)
        return out.float() / 255

    def _synthetic(self, g):
        img = self.stills[int(torch.randint(len(self.stills), (1,), generator=g))]
        _, h, w = img.shape
        r = torch.rand(6, generator=g, dtype=torch.float64).tolist()
        size0 = self.crop * (1.0 + 0.5 * r[0])                 # source window side (pixels)
        zoom = 1.0 + 0.06 * (r[1] - 0.5)                        # window scale per frame
        speed = 12.0 * r[2]                                     # pixels per frame
        angle = 2 * math.pi * r[3]
        vx, vy = speed * math.cos(angle), speed * math.sin(angle)
        sizes = [min(size0 * zoom ** t, h, w) for t in range(self.frames)]
        cx = [0.0] * self.frames
        cy = [0.0] * self.frames
        span_x = max(abs(vx) * self.frames + max(sizes), 1)
        span_y = max(abs(vy) * self.frames + max(sizes), 1)
        x0 = span_x / 2 + r[4] * max(0.0, w - span_x)
        y0 = span_y / 2 + r[5] * max(0.0, h - span_y)
        theta = []
        for t in range(self.frames):
            cx[t] = min(max(x0 + vx * (t - self.frames / 2), sizes[t] / 2), w - sizes[t] / 2)
            cy[t] = min(max(y0 + vy * (t - self.frames / 2), sizes[t] / 2), h - sizes[t] / 2)
            theta.append([[sizes[t] / w, 0, 2 * cx[t] / w - 1], [0, sizes[t] / h, 2 * cy[t] / h - 1]])
        theta = torch.tensor(theta, dtype=torch.float32, device=self.device)
        grid = F.affine_grid(theta, (self.frames, 3, self.crop, self.crop), align_corners=False)
        src = img.float().div(255).expand(self.frames, -1, -1, -1)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def batch(self, seed: int, step: int, batch_size: int, rank: int = 0):
        """The clips of one step (each data-parallel rank draws its own)."""
        g = torch.Generator().manual_seed((seed * 1_000_003 + step + rank * 1_000_000_007) % (2**63 - 1))
        clips = []
        for _ in range(batch_size):
            synth = float(torch.rand(1, generator=g)) < self.synthetic
            clips.append(self._synthetic(g) if synth else self._real(g))
        quality = QUALITY_MIN + (QUALITY_MAX - QUALITY_MIN) * torch.rand(batch_size, generator=g)
        return torch.stack(clips), quality.to(self.device)


# ----------------------------------------------------------------- model steps
def frame_qualities(base: torch.Tensor, t: int) -> torch.Tensor:
    off = I_OFFSET if t == 0 else P_OFFSETS[t % len(P_OFFSETS)]
    return (base + off).clamp(QUALITY_MIN, QUALITY_MAX)


@torch.no_grad()
def intra_forward(intra, x: torch.Tensor, q: torch.Tensor):
    """Decoded latent and reconstruction of the frozen image codec (rounding, no noise)."""
    y = intra.analyse(x, q)
    z_hat, _ = intra.z_prior(intra.h_a(y))
    y_hat, _ = intra.forward_y(y, intra.h_s(z_hat))
    return y_hat, intra.synthesise(y_hat, q).clamp(0, 1)


def rate_weight(step: int, warmup: int) -> float:
    """Weight of the rate term at ``step`` with a rate warm-up of ``warmup`` steps: 0 -> 1
    linearly (distortion first), 1 after it or without one."""
    return min(1.0, step / warmup) if warmup > 0 else 1.0


def guide_weight(step: int, weight: float, steps: int) -> float:
    """Weight of the flow-guide loss at ``step``: ``weight``, decaying linearly to 0 over
    ``steps`` steps (0: constant), so that the rate-distortion loss alone shapes the warp at the end."""
    if steps <= 0:
        return weight
    return weight * max(0.0, 1.0 - step / steps)


def clip_loss(model, clips: torch.Tensor, quality: torch.Tensor, bptt: int = 0, rate_scale: float = 1.0,
              guide_scale: float = 0.0) -> dict:
    """RD loss of I P P ... over a batch of clips (B, T, 3, H, W). Each P-frame is coded from
    the previous reconstruction, so errors propagate as in a GOP; with ``bptt`` the gradient
    through the propagated reference, context and buffer is cut every ``bptt`` P-frames (long
    unrolls in bounded memory; the forward pass still propagates). ``rate_scale`` weights the
    rate term of the loss (the reported bpp is the rate itself); ``guide_scale`` the distance
    of the warp from the searched motion (models with ``motion``, see VideoRT.forward_p)."""
    y_i, x_ref = intra_forward(model.intra, clips[:, 0], frame_qualities(quality, 0))
    return p_frames_loss(model, clips, quality, y_i, x_ref, bptt, rate_scale, guide_scale)


def p_frames_loss(model, clips, quality, y_i, x_ref, bptt: int = 0, rate_scale: float = 1.0,
                  guide_scale: float = 0.0) -> dict:
    """The P-frame part of :func:`clip_loss`, from the I-frame's decoded latent ``y_i`` and
    reconstruction ``x_ref`` (the frozen image codec stays out of it, and out of a compile)."""
    b, t_len, _, h, w = clips.shape
    ctx = model.context_from_frame(x_ref)
    buf = model.buf_init(y_i)
    loss, bpp_sum, mse_sum = 0.0, 0.0, 0.0
    for t in range(1, t_len):
        q = frame_qualities(quality, t)
        x = clips[:, t]
        out = model.forward_p(x, x_ref, ctx, buf, q)
        x_hat = out["x_hat"].float()
        bpp = bits_per_pixel(out["likelihoods"], h * w)
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        loss = loss + (rd_lambda(q).to(x.device) * 255.0 ** 2 * mse + rate_scale * bpp
                       + guide_scale * out["flow_gap"]).mean()
        bpp_sum = bpp_sum + bpp.mean().detach()
        mse_sum = mse_sum + mse.mean().detach()
        x_ref, ctx, buf = x_hat.clamp(0, 1), out["ctx"], out["buf"]
        if bptt and t % bptt == 0:
            x_ref, ctx, buf = x_ref.detach(), ctx.detach(), buf.detach()
    n = t_len - 1
    return {"loss": loss / n, "bpp": bpp_sum / n, "psnr": psnr_from_mse(mse_sum / n)}


class FastClipLoss:
    """:func:`clip_loss` set up for speed: the P-frame networks under bf16 autocast (``bf16``;
    likelihoods, distortion and loss stay fp32) and/or the whole unroll under ``torch.compile``
    (``compile``, in ``compile_mode``: reduce-overhead replays CUDA graphs; see
    :class:`~neuralcodec.train.step.CompiledOrEager` for the fallback to eager). The rate scale
    and the flow guide's weight are passed as tensors, so that their schedules do not recompile; the frozen
    I-frame codec runs eagerly (its decoder caches weights, which a compiled graph guards on)."""

    def __init__(self, bf16: bool = False, compile: bool = False, warn=print, compile_mode: str = "default"):
        from neuralcodec.train.step import CompiledOrEager
        self.bf16 = bf16
        self._run = CompiledOrEager(self._loss, compile, compile_mode, warn)

    @property
    def compiled(self) -> bool:
        return self._run.active

    def _loss(self, model, clips, quality, y_i, x_ref, bptt, rate_scale, guide_scale):
        with torch.autocast(clips.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return p_frames_loss(model, clips, quality, y_i, x_ref, bptt, rate_scale, guide_scale)

    def __call__(self, model, clips, quality, bptt: int = 0, rate_scale: float = 1.0,
                 guide_scale: float = 0.0) -> dict:
        scale = torch.tensor(float(rate_scale), device=clips.device)
        guide = torch.tensor(float(guide_scale), device=clips.device)
        y_i, x_ref = intra_forward(model.intra, clips[:, 0], frame_qualities(quality, 0))
        return self._run(model, clips, quality, y_i, x_ref, bptt, scale, guide)


# ----------------------------------------------------------------- loop
def make_optimizers(model, lr: float):
    """Adam for the P-frame networks and for the auxiliary ``quantiles`` of the hyper prior."""
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    return torch.optim.Adam(main, lr=lr), torch.optim.Adam(aux, lr=1e-3)


def optimise(model, opt, aux_opt, loss: torch.Tensor, lr: float, clip: float, average=None) -> None:
    """One optimiser step on ``loss`` (learning rate ``lr``, gradient-norm clip of the P-frame
    parameters) and one on the auxiliary loss; ``average(params)`` averages gradients
    across data-parallel ranks after each backward pass."""
    main_params = [p for g in opt.param_groups for p in g["params"]]
    aux_params = [p for g in aux_opt.param_groups for p in g["params"]]
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if average is not None:
        average(main_params)
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(main_params, clip)
    opt.step()
    aux_opt.zero_grad(set_to_none=True)
    model.aux_loss().backward()
    if average is not None:
        average(aux_params)
    aux_opt.step()


def build_model(init: str, init_partial: bool, codec_kwargs: dict, device, intra=None, log=print):
    """A video-rt model for training: from ``init`` weights (all of them, or with
    ``init_partial`` those whose names and shapes match a model of ``codec_kwargs``) or fresh;
    the I-frame codec is frozen (eval mode, no gradients)."""
    from neuralcodec.video.weights import create, load
    if init and not init_partial:
        model = load(None, init, device, intra=intra, check_intra=False)
    else:
        model = create(device=device, intra_model=intra, **codec_kwargs)
        if init:
            from neuralcodec.train.image_task import load_init
            log(f"init: {load_init(model, init, partial=True)} of {len(model.state_dict())} tensors from {init}")
    model.train()
    model.intra.eval()
    for p in model.intra.parameters():
        p.requires_grad_(False)
    return model


def export(model, path: str, info: dict) -> None:
    from neuralcodec.video.weights import save_weights
    model.eval()
    model.update()
    save_weights(model, path, info=info)
    model.train()


def resolve_auto(cfg, device: torch.device):
    """``cfg`` with its automatic choices made for ``device``: on CUDA the fastest step measured
    (round 9, ``bench/video_train_speed.py``: batch 32, bf16, the unroll compiled with CUDA
    graphs, 12.5x the eager fp32 batch-8 step), on the CPU batch 8, fp32, eager."""
    from dataclasses import replace

    from neuralcodec.train.step import fast_defaults
    mode = cfg.compile_mode if cfg.compile_mode != "auto" else (
        "reduce-overhead" if device.type == "cuda" else "default")
    return replace(fast_defaults(cfg, device, cuda_batch=32), compile_mode=mode)


class VideoTask(engine.Task):
    """video-rt P-frame training, the engine's video task: clips coded I P P ... (the I-frame
    codec frozen), Adam on the P-frame networks and on the hyper prior's quantiles, a cosine
    schedule to 5 % of ``lr`` over ``steps`` or ``max_minutes`` of this process (wall time),
    whichever ends first. Validation: the first ``frames`` frames of each ``val`` clip (a
    top-left crop), coded at ``val_qualities`` in eval mode (rounding)."""

    FIXED = VideoTrainConfig.FIXED
    budget_clock = "wall"

    def __init__(self, cfg: VideoTrainConfig):
        super().__init__(cfg)
        self.title = f"video-rt: {Path(cfg.out).name}"
        self.t0 = time.time()
        self.clips, self.stills, self.val_clips = [], [], []

    def check(self) -> None:
        if self.cfg.ema and not 0 < self.cfg.ema < 1:
            raise InputError(f"--ema must be a decay in (0, 1) (0: off), got {self.cfg.ema:g}")

    def resolve(self, device, world_size) -> None:
        self.cfg = resolve_auto(self.cfg, device)

    def wall_limit_minutes(self) -> float:
        return 0.0

    def budget_minutes(self) -> float:
        return self.cfg.max_minutes

    def prepare_device(self, device) -> None:
        from neuralcodec.train.validate import set_tf32
        if device.type == "cuda":
            set_tf32(True)

    def build_model(self, device, info, log):
        cfg = self.cfg   # the --init weights also give the architecture when resuming
        return build_model(cfg.init, cfg.init_partial, cfg.codec_kwargs, device, log=log)

    def setup(self, device, info, warn) -> None:
        from neuralcodec.train.ema import make_ema
        self.opt, self.aux_opt = make_optimizers(self.model, self.cfg.lr)
        self.ema = make_ema(self.model, self.cfg.ema) if self.cfg.ema else None
        self.loss = FastClipLoss(self.cfg.precision == "bf16", self.cfg.compile, warn, self.cfg.compile_mode)

    def optimizers(self):
        return {"main": self.opt, "aux": self.aux_opt}

    def load_data(self, device, info, log) -> None:
        cfg = self.cfg
        self.clips = find_clips(cfg.video, cfg.video_scale, cfg.max_clip_frames) if cfg.video else []
        self.stills = [load_image(p) for p in find_images(cfg.images)] if cfg.images else []
        self.sampler = ClipSampler(self.clips, self.stills, cfg.crop, cfg.frames, cfg.synthetic, device)
        log(f"data: {len(self.sampler.clips)} clips ({sum(c.shape[0] for c in self.sampler.clips)} frames), "
            f"{len(self.sampler.stills)} stills, synthetic fraction {self.sampler.synthetic:g}")
        if cfg.val and info.is_main:
            val = find_clips(cfg.val, cfg.video_scale, cfg.frames)
            self.val_clips = [torch.from_numpy(np.stack([fit_to_crop(f, cfg.crop, "pad") for f in frames]))
                              .permute(0, 3, 1, 2)[None, :, :, :cfg.crop, :cfg.crop].to(device)
                              for _, frames in val]

    def describe(self, info) -> str:
        cfg = self.cfg
        rate = f"rate warm-up {cfg.rate_warmup} steps, " if cfg.rate_warmup else ""
        steps = f" over {cfg.flow_guide_steps} steps" if cfg.flow_guide_steps else ""
        guide = f"flow guide {cfg.flow_guide:g}{steps}, " if cfg.flow_guide else ""
        return (f"batch {cfg.batch_size} x {info.world_size} process(es) of {cfg.frames} frames, lr {cfg.lr:g}, "
                f"warm-up {cfg.warmup_steps} steps, {rate}{guide}{cfg.precision}, "
                f"compile {cfg.compile_mode if cfg.compile else 'off'}, "
                + (f"EMA {cfg.ema:g}" if cfg.ema else "no EMA"))

    def lr(self, step, progress) -> float:
        cfg = self.cfg
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        progress = step / cfg.steps if progress is None else progress
        return lr_at(int(progress * 100000), 100000, cfg.lr, "cosine", warmup=0, final=0.05)

    def step(self, step, lr, info):
        cfg = self.cfg
        clips, quality = self.sampler.batch(cfg.seed, step, cfg.batch_size, info.rank)
        res = self.loss(self.model, clips, quality, cfg.bptt, rate_weight(step, cfg.rate_warmup),
                        guide_weight(step, cfg.flow_guide, cfg.flow_guide_steps))
        optimise(self.model, self.opt, self.aux_opt, res["loss"], lr, cfg.clip,
                 lambda ps: D.average_grads(info, ps))
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return res

    def log_values(self, values, its, info) -> dict:
        return {"minutes": (time.time() - self.t0) / 60}

    def log_line(self, step, values) -> str:
        return (f"step {step}: loss {values['loss']:.4f} bpp {values['bpp']:.4f} psnr {values['psnr']:.2f} "
                f"lr {values['lr']:.2e} ({values['minutes']:.1f} min)")

    @property
    def validates(self) -> bool:
        return bool(self.cfg.val)

    @torch.no_grad()
    def validate(self, step, log) -> None:
        if not self.val_clips:
            return
        model = self.shipping_model()
        model.eval()
        text = []
        for q in self.cfg.val_qualities:
            quality = torch.full((1,), float(q), device=self.val_clips[0].device)
            res = [clip_loss(model, c.float() / 255, quality) for c in self.val_clips]
            bpp = float(np.mean([float(r["bpp"]) for r in res]))
            psnr = float(np.mean([float(r["psnr"]) for r in res]))
            log.record(step, {f"q{q:g}/bpp": bpp, f"q{q:g}/psnr": psnr}, prefix="val")
            text.append(f"q{q:g}: {bpp:.4f} bpp {psnr:.2f} dB")
        model.train()
        model.intra.eval()
        log.info(f"validation at step {step}{' (EMA)' if self.ema is not None else ''} "
                 f"({len(self.val_clips)} clips, P-frames): " + "  ".join(text))

    def _rows(self, log) -> list[dict]:
        return [{"step": r["step"], **{k: r[f"train/{k}"] for k in ("loss", "bpp", "psnr", "lr", "minutes")}}
                for r in log.rows() if "train/loss" in r]

    def export(self, step, log) -> None:
        cfg, rows = self.cfg, self._rows(log)
        info = {"steps": step, "minutes": round((time.time() - self.t0) / 60, 2),
                "data": {"clips": [n for n, _ in self.clips], "stills": len(self.stills),
                         "synthetic": self.sampler.synthetic if self.clips or self.stills else None},
                "frames": cfg.frames, "crop": cfg.crop, "batch_size": cfg.batch_size,
                "last": rows[-1] if rows else None}
        if cfg.ema:
            info["ema"] = cfg.ema
        if cfg.init:        # provenance of a fine-tune (or of a re-pairing with new I-frame weights)
            from neuralcodec.codecs.weights import read_metadata
            info["init"] = {"path": Path(cfg.init).name, "info": json.loads(read_metadata(cfg.init).get("info") or "{}")}
        export(self.shipping_model(), cfg.export, info)
        log.info(f"exported {cfg.export}", file=sys.stdout)

    def finish(self, step, done, log) -> None:
        """``history.json``: the logged rows (as before the engine; ``train_log.jsonl`` has them too)."""
        (Path(self.cfg.out) / "history.json").write_text(json.dumps(self._rows(log)))


def run(cfg: VideoTrainConfig, stop_after: int | None = None, t_start: float | None = None) -> dict:
    """Train (or continue) a run through the engine (:func:`neuralcodec.train.engine.run`);
    under torchrun every rank trains on its own clips and the gradients are averaged; rank 0
    logs, validates, checkpoints and exports."""
    return engine.run(VideoTask(cfg), stop_after=stop_after, t_start=t_start)


def main(argv=None) -> int:
    sys.exit("use `neuralcodec train-video`")
