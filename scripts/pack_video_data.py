"""Pack a small video training set (~8 MiB) for the GPU machine into .carry/video: the
720p mp4 as is (for RD with PyAV) and as WebP frames downscaled to 640x360 (its first 160
frames, for training without PyAV), BasketballPass frames at full size and the vid4 clips
downscaled by 2, all WebP quality 95 (90 for the mp4 frames) frame folders.
Usage: python scripts/pack_video_data.py [SRC] [DST]"""
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

src = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/video")
dst = Path(sys.argv[2] if len(sys.argv) > 2 else ".carry/video")
dst.mkdir(parents=True, exist_ok=True)
manifest = {"source": str(src), "clips": []}
for p in sorted(src.iterdir()):
    if p.is_file() and p.suffix == ".mp4":
        shutil.copyfile(p, dst / p.name)
        manifest["clips"].append({"name": p.name, "copied": True})
        import av
        out = dst / (p.stem + "_360p")
        out.mkdir(exist_ok=True)
        with av.open(str(p)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i >= 160:
                    break
                im = frame.to_image().resize((640, 360), Image.LANCZOS)
                im.save(out / f"f{i + 1:03d}.webp", "WEBP", quality=90, method=6)
        manifest["clips"].append({"name": out.name, "frames": min(i + 1, 160), "size": [640, 360],
                                  "format": "webp q90", "from": p.name})
    elif p.is_dir():
        scale = 2 if p.name.startswith("vid4") else 1
        out = dst / p.name
        out.mkdir(exist_ok=True)
        frames = sorted(p.glob("*.png"))
        for f in frames:
            im = Image.open(f).convert("RGB")
            if scale > 1:
                im = im.resize((im.width // scale, im.height // scale), Image.LANCZOS)
            im.save(out / (f.stem + ".webp"), "WEBP", quality=95, method=6)
        manifest["clips"].append({"name": p.name, "frames": len(frames), "scale": scale,
                                  "size": list(im.size), "format": "webp q95"})
(dst / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
total = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
print(f"{dst}: {total / 2**20:.2f} MiB")
