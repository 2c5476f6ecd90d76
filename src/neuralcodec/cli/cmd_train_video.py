"""`neuralcodec train-video`: train the `video-rt` P-frame networks (see docs/video.md)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train-video", help="train the video-rt codec on clips and synthetic pans/zooms")
    a = p.add_argument
    a("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, config.json, history.json)")
    a("--video", nargs="*", default=[], metavar="PATH",
      help="frame folders / video files (searched recursively)")
    a("--images", nargs="*", default=[], metavar="DIR", help="still images for synthetic camera motion")
    a("--synthetic", type=float, default=0.5, help="fraction of synthetic clips (default 0.5)")
    a("--steps", type=int, default=20000, help="optimizer steps (default 20000)")
    a("--batch-size", type=int, default=8, help="clips per step and per process (default 8)")
    a("--frames", type=int, default=4, help="frames per training clip: I + P... (default 4)")
    a("--crop", type=int, default=256, help="crop size, a multiple of 64 (default 256)")
    a("--lr", type=float, default=2e-4, help="learning rate (default 2e-4)")
    a("--warmup-steps", type=int, default=200, help="linear learning-rate warm-up steps (default 200)")
    a("--clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    a("--video-scale", type=float, default=1.0, help="downscale decoded video files by this factor")
    a("--max-clip-frames", type=int, default=300,
      help="read at most N frames of each clip (default 300)")
    a("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: cuda when available")
    a("--seed", type=int, default=0, help="random seed (default 0)")
    a("--max-minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    a("--ckpt-every", type=int, default=1000, help="checkpoint every N steps (default 1000)")
    a("--log-every", type=int, default=100, help="log interval in steps (default 100)")
    a("--resume", action="store_true", help="continue from the latest checkpoint in RUN_DIR")
    a("--export", default="", metavar="PATH", help="write fp16 video-rt weights here at the end")
    a("--init", default="", metavar="PATH", help="start from these video-rt weights")
    a("--init-partial", action="store_true",
      help="with --init: load only the tensors whose names and shapes fit the --config model")
    a("--config", default="{}", metavar="JSON",
      help='P-frame model options, e.g. \'{"ctx_scales": 3, "warp": true, "f": 64}\' (see docs/video.md)')
    a("--bptt", type=int, default=0, metavar="N",
      help="cut the gradient through the propagated reference every N P-frames (0: never)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from pathlib import Path

    from neuralcodec.errors import InputError

    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as exc:
        raise InputError(f"--config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise InputError("--config must be a JSON object of model options")
    if config and args.init and not args.init_partial:
        raise InputError("--config with --init needs --init-partial (the weights file holds its own configuration)")
    if args.bptt < 0:
        raise InputError("--bptt must be >= 0")
    if args.frames < 2:
        raise InputError("--frames must be at least 2 (an I-frame and a P-frame)")
    if args.crop % 64:
        raise InputError("--crop must be a multiple of 64")
    for path in [*args.video, *args.images]:
        if not Path(path).exists():
            raise InputError(f"training data {path} does not exist")
    if args.init and not Path(args.init).is_file():
        raise InputError(f"--init {args.init}: file not found")

    from neuralcodec.video.train import VideoTrainConfig, run as train   # imports torch

    cfg = VideoTrainConfig(out=args.out, video=args.video, images=args.images, synthetic=args.synthetic,
                           steps=args.steps, batch_size=args.batch_size, frames=args.frames, crop=args.crop,
                           lr=args.lr, warmup_steps=args.warmup_steps, clip=args.clip,
                           video_scale=args.video_scale, max_clip_frames=args.max_clip_frames,
                           device=args.device, seed=args.seed, max_minutes=args.max_minutes,
                           ckpt_every=args.ckpt_every, log_every=args.log_every, resume=args.resume,
                           export=args.export, init=args.init, progress=args.progress,
                           init_partial=args.init_partial, codec_kwargs=config, bptt=args.bptt)
    train(cfg, log=lambda s: print(s, flush=True))
    return 0
