"""`neuralcodec pack-data`: a training set that fits a byte budget."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("pack-data", help="pack training images into a size budget",
                       description="Downsample and re-encode image folders (lossless WebP by default) so "
                                   "that the whole set fits --max-mib; writes OUT_DIR/MANIFEST.json.")
    p.add_argument("sources", nargs="+", metavar="SRC_DIR", help="image folders (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="new (or empty) output folder")
    p.add_argument("--max-mib", type=float, default=40.0, help="size budget of OUT_DIR (default 40)")
    p.add_argument("--min-side", type=int, default=256,
                   help="never shrink a short side below this; smaller sources are skipped (default 256)")
    p.add_argument("--format", choices=["webp", "png", "jpeg"], default="webp",
                   help="webp (lossless, default), png, or jpeg (q95, lossy)")
    p.add_argument("--lowq-threshold", type=float, default=90.0,
                   help="JPEGs with estimated quality below this are low quality (default 90)")
    p.add_argument("--lowq-scale", type=float, default=0.5, help="scale of low-quality JPEGs (default 0.5)")
    p.add_argument("--jpeg-scale", type=float, default=1.0, help="scale of other JPEGs (default 1)")
    p.add_argument("--keep-jpeg", action="store_true",
                   help="copy JPEGs of at least --lowq-threshold quality byte for byte (full size, no re-encoding)")
    p.add_argument("--part-mib", type=float, default=0.0, metavar="MIB",
                   help="split the set into balanced parts OUT_DIR/part-NN of at most MIB each, one per "
                        "transfer (the whole set still fits --max-mib); default: one folder")
    p.add_argument("--workers", type=int, default=2, help="encoding processes (default 2)")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT_DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from neuralcodec.train.pack import pack
    pack(args.sources, args.output, args.max_mib, args.min_side, args.format, args.lowq_threshold,
         args.lowq_scale, args.jpeg_scale, args.workers, args.force,
         log=lambda m: print(m, file=sys.stderr, flush=True), keep_jpeg=args.keep_jpeg, part_mib=args.part_mib)
    return 0
