"""Shared parts of the fuzz harnesses (see fuzz/README.md): resource limits, the failure rule,
CRC repair of mutated inputs, and the atheris (or fallback) driver.

An input fails when it raises anything but a :class:`neuralcodec.errors.NeuralCodecError`,
crashes the process, runs over 10 s (libFuzzer ``-timeout``) or allocates over 2 GiB (an
``RLIMIT_AS`` of the address space in use after start-up plus 2 GiB: a larger allocation
raises MemoryError, which is not a project error).
"""
from __future__ import annotations

import os
import random
import resource
import signal
import struct
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from neuralcodec.errors import BitstreamError  # noqa: E402  (light modules: no coder import)
from neuralcodec.io.varint import encode_varint, read_varint  # noqa: E402
WORK = Path(os.environ.get("FUZZ_WORK", ROOT / "fuzz" / "work"))
ALLOC_LIMIT = 2 << 30
TIMEOUT_S = 10



def _load_native_override() -> None:
    """With ``FUZZ_RANS=path/to/_rans.so`` (a sanitizer build, see README), that build of the
    native coder stands in for the package's own."""
    import importlib.machinery
    import importlib.util

    path = os.environ.get("FUZZ_RANS")
    if not path:
        return
    name = "neuralcodec.entropy._rans"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module


_load_native_override()

MAGIC = b"\x89NCB\r\n\x1a\n"
FIXED_BODY_SIZE = struct.calcsize("<32sBBIIIIIdBH")


def single_core() -> None:
    """One thread everywhere (torch, the native coder): the campaign uses one core."""
    import torch
    from neuralcodec.entropy import coder

    torch.set_num_threads(1)
    coder.set_num_threads(1)


def limit_memory(extra: int = ALLOC_LIMIT) -> int:
    """Cap the address space at what is mapped now plus ``extra``; returns the cap."""
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = size + extra
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return cap


def crc(data, value: int = 0) -> int:
    return zlib.crc32(data, value) & 0xFFFFFFFF


def _varint(data, pos):
    """(value, next position) of the varint at ``pos``, or None (cut or over-long)."""
    try:
        return read_varint(data, pos)
    except BitstreamError:
        return None


def framed_lengths(data, start: int, end: int):
    """(position of the first stream, [lengths]) when ``data[start:end]`` is a varint-framed
    list (codecs/framing.py) of 1..12 streams, else None."""
    for count in range(1, 13):
        pos, lengths = start, []
        for _ in range(count):
            head = _varint(data, pos)
            if head is None:
                break
            lengths.append(head[0])
            pos = head[1]
        if len(lengths) == count and pos + sum(lengths) == end:
            return pos, lengths
    return None


def fix_coder_stream(b: bytearray, start: int, end: int) -> bool:
    """Recompute the CRC32 of a native coder stream in b[start:end] in place (format byte 1,
    a model byte 1..5, two varints, the CRC). False when it does not look like one."""
    if end - start < 2 or b[start] != 1 or not 1 <= b[start + 1] <= 5:
        return False
    pos = start + 2
    for _ in range(2):
        head = _varint(b, pos)
        if head is None or head[1] > end:
            return False
        pos = head[1]
    if end - pos < 4:
        return False
    value = crc(b[pos + 4:end], crc(b[start:pos]))
    b[pos:pos + 4] = value.to_bytes(4, "little")
    return True


def fix_payload(b: bytearray, start: int, end: int, depth: int = 0) -> None:
    """Best-effort CRC repair of the coder streams inside a substream payload: a coder stream,
    a varint-framed list of them (codecs/framing.py), optionally behind a 2-byte frame
    quality, or trit-plane's ``varint(n) payload stream``."""
    if depth > 2 or fix_coder_stream(b, start, end):
        return
    for skip in (0, 2):
        framed = framed_lengths(b, start + skip, end)
        if framed is not None:
            pos, lengths = framed
            for n in lengths:
                fix_payload(b, pos, pos + n, depth + 1)
                pos += n
            return
    head = _varint(b, start)                  # trit-plane's side stream
    if head is not None and head[1] + head[0] < end:
        fix_coder_stream(b, head[1] + head[0], end)


def fix_container(data: bytes, inner: bool = True) -> bytes:
    """``data`` with every container CRC recomputed (header, substream heads and data, end
    record) where the record structure can be followed, and, with ``inner``, the coder
    streams' own CRCs; unchanged from the first record it cannot follow."""
    b = bytearray(data)
    if len(b) < 14 or b[:8] != MAGIC:
        return bytes(b)
    body_len = struct.unpack_from("<I", b, 10)[0]
    pos = 14 + body_len
    if pos + 4 > len(b):
        return bytes(b)
    b[pos:pos + 4] = crc(b[:pos]).to_bytes(4, "little")
    pos += 4
    while pos < len(b):
        tag = b[pos:pos + 1]
        if tag == b"S":
            if pos + 3 > len(b):
                break
            name_len = b[pos + 2]
            fixed = pos + 3 + name_len
            if fixed + 16 > len(b):
                break
            length = struct.unpack_from("<Q", b, fixed)[0]
            start = fixed + 16
            if start + length <= len(b):
                if inner:
                    fix_payload(b, start, start + length)
                b[fixed + 8:fixed + 12] = crc(b[start:start + length]).to_bytes(4, "little")
            b[fixed + 12:fixed + 16] = crc(b[pos:fixed + 12]).to_bytes(4, "little")
            pos = start + length
        elif tag == b"E":
            if pos + 9 > len(b):
                break
            b[pos + 5:pos + 9] = crc(b[:pos + 5]).to_bytes(4, "little")
            pos += 9
        else:
            break
    return bytes(b)


def split_container(data: bytes):
    """(header record, [(flags, name, payload)]) of a complete container whose records can be
    followed (CRCs not checked), else None."""
    if len(data) < 14 or data[:8] != MAGIC:
        return None
    pos = 18 + struct.unpack_from("<I", data, 10)[0]
    header, subs = data[:pos], []
    while pos < len(data) and data[pos:pos + 1] == b"S" and pos + 3 <= len(data):
        name_len = data[pos + 2]
        fixed = pos + 3 + name_len
        if fixed + 16 > len(data):
            return None
        length = struct.unpack_from("<Q", data, fixed)[0]
        if fixed + 16 + length > len(data):
            return None
        subs.append((data[pos + 1], data[pos + 3:fixed], data[fixed + 16:fixed + 16 + length]))
        pos = fixed + 16 + length
    return (header, subs) if data[pos:pos + 1] == b"E" else None


def join_container(header: bytes, subs) -> bytes:
    """Inverse of :func:`split_container` with every length and CRC (but not the coder
    streams' own) recomputed."""
    b = bytearray(header)
    if len(b) >= 14:
        struct.pack_into("<I", b, 10, max(len(b) - 18, 0))
    for flags, name, payload in subs:
        name = name[:255]
        b += b"S" + bytes((flags & 0xFF, len(name))) + name
        b += struct.pack("<QII", len(payload), 0, 0) + payload
    b += b"E" + struct.pack("<I", len(subs)) + b"\0\0\0\0"
    return fix_container(bytes(b), inner=False)


def split_framed(payload: bytes):
    """The streams of a varint-framed list (codecs/framing.py) of 1..12 streams, else None."""
    framed = framed_lengths(payload, 0, len(payload))
    if framed is None:
        return None
    pos, out = framed[0], []
    for n in framed[1]:
        out.append(payload[pos:pos + n])
        pos += n
    return out


def split_coder(stream: bytes):
    """(head before the CRC, [chunk payloads]) of a native coder stream, else None."""
    if len(stream) < 2 or stream[0] != 1 or not 1 <= stream[1] <= 5:
        return None
    pos = 2
    for _ in range(2):
        head = _varint(stream, pos)
        if head is None:
            return None
        pos = head[1]
    head_end, pos, chunks = pos, pos + 4, []
    while pos < len(stream):
        head = _varint(stream, pos)
        if head is None:
            return None
        chunks.append(head[0])
        pos = head[1]
        if pos + sum(chunks) == len(stream):
            out = []
            for n in chunks:
                out.append(stream[pos:pos + n])
                pos += n
            return stream[:head_end], out
    return None


def join_coder(head: bytes, chunks) -> bytes:
    b = bytearray(head + b"\0\0\0\0" + b"".join(encode_varint(len(c)) for c in chunks)
                  + b"".join(chunks))
    fix_coder_stream(b, 0, len(b))
    return bytes(b)


def mutate_payload(payload: bytes, rng: random.Random, mutate) -> bytes:
    """One mutation somewhere inside a substream payload, keeping the framing and the coder
    streams' tables consistent: of a chunk, of a coder stream's header, of a framed stream,
    or of the raw bytes."""
    framed = split_framed(payload)
    if framed and rng.random() < 0.8:
        i = rng.randrange(len(framed))
        framed[i] = mutate_payload(framed[i], rng, mutate)
        return b"".join(encode_varint(len(p)) for p in framed) + b"".join(framed)
    coded = split_coder(payload)
    if coded and coded[1] and rng.random() < 0.8:
        head, chunks = coded
        if rng.random() < 0.8:
            i = rng.randrange(len(chunks))
            chunks[i] = mutate(chunks[i], len(chunks[i]) + 16)
        else:
            head = mutate(head, len(head) + 4)
        return join_coder(head, chunks)
    return mutate(payload, len(payload) * 2 + 16)


def structured_mutator(data: bytes, max_size: int, seed: int, mutate=None) -> bytes:
    """libFuzzer custom mutator: mostly a change inside a container that keeps it well formed
    (a payload, the header body, the record list), else a plain byte-level mutation."""
    if mutate is None:
        import atheris
        mutate = atheris.Mutate
    rng = random.Random(seed)
    parsed = split_container(data[1:]) if data else None
    if parsed is None or rng.random() < 0.15:
        return mutate(data, max_size)
    header, subs = parsed
    subs = list(subs)
    r = rng.random()
    if r < 0.65 and subs:
        i = rng.randrange(len(subs))
        flags, name, payload = subs[i]
        subs[i] = (flags, name, mutate_payload(payload, rng, mutate))
    elif r < 0.8:
        header = header[:14] + mutate(header[14:-4], len(header) + 32) + header[-4:]
    elif subs:
        i, j = rng.randrange(len(subs)), rng.randrange(len(subs))
        op = rng.randrange(4)
        if op == 0:
            del subs[i]
        elif op == 1:
            subs.insert(j, subs[i])
        elif op == 2:
            subs[i], subs[j] = subs[j], subs[i]
        else:
            flags, name, payload = subs[i]
            subs[i] = (rng.randrange(4), mutate(name, 12) if rng.random() < 0.5 else name, payload)
    out = bytes((3 if rng.random() < 0.9 else 1,)) + join_container(header, subs)
    return out[:max_size]


def prepare(data: bytes) -> bytes:
    """The input a target sees: the first byte picks the repair (bit 0: container CRCs,
    bit 1: also the coder streams' CRCs), the rest is the stream."""
    if not data:
        return b""
    mode, rest = data[0], data[1:]
    return fix_container(rest, bool(mode & 2)) if mode & 1 else rest


def write_seeds(name: str, seeds: dict[str, bytes]) -> Path:
    """Seeds (each behind the repair byte 3) under work/<name>/seeds; returns the folder."""
    folder = WORK / name / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in seeds.items():
        assert fix_container(data) == data, f"CRC repair changes the valid seed {key}"
        (folder / key).write_bytes(b"\x03" + data)
    return folder


def guarded(target, name: str):
    """``target(bytes)`` with the failure rule: project errors pass, anything else escapes.
    Outcome counts (accepted, or the error's type and first words) go to
    work/<name>/stats.json every 30 s."""
    import collections
    import json
    import re

    from neuralcodec.errors import NeuralCodecError

    stats, last = collections.Counter(), [time.monotonic()]

    def run(data: bytes) -> None:
        try:
            target(data)
            stats["accepted"] += 1
        except NeuralCodecError as exc:
            words = re.sub(r"[0-9]+", "N", " ".join(str(exc).split()[:5]))
            stats[f"{type(exc).__name__}: {words}"] += 1
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            summary = {"executions": sum(stats.values()), **dict(stats.most_common(40))}
            (WORK / name / "stats.json").write_text(json.dumps(summary, indent=1))
    return run


def main(name: str, target, seeds, structured: bool = False) -> None:
    """Run ``target`` under atheris with libFuzzer's arguments from the command line (corpus
    work/<name>/corpus, seeds from ``seeds()``), or, without atheris (``FUZZ_FALLBACK=1`` or
    not installed), under a seeded mutation loop (``FUZZ_SECONDS``, default 60).
    ``structured``: use :func:`structured_mutator` (container inputs)."""
    seed_dir = write_seeds(name, seeds())
    corpus = WORK / name / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    single_core()
    run = guarded(target, name)
    for path in sorted(seed_dir.iterdir()):       # every seed passes before the campaign
        run(path.read_bytes())
    cap = limit_memory()
    print(f"fuzz {name}: address-space cap {cap >> 20} MiB", file=sys.stderr)
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is None or os.environ.get("FUZZ_FALLBACK"):
        return fallback(run, [p.read_bytes() for p in sorted(seed_dir.iterdir())], corpus,
                        structured)
    given = [a for a in sys.argv[1:] if not a.startswith("-")]
    replay = bool(given) and all(os.path.isfile(a) for a in given)   # inputs to run once
    args = [sys.argv[0], f"-timeout={TIMEOUT_S}", "-rss_limit_mb=0", "-len_control=0",
            f"-artifact_prefix={WORK / name}/", *sys.argv[1:],
            *([] if replay else [str(corpus), str(seed_dir)])]
    atheris.Setup(args, run, custom_mutator=structured_mutator if structured else None)
    atheris.Fuzz()


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1) if b else 0
        if op == 0 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[min(i, len(b) - 1)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == 2:
            del b[i:i + rng.randint(1, 16)]
        elif op == 3:
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and len(b) > 8:
            j = rng.randrange(len(b) - 4)
            b[j:j + 4] = struct.pack("<I", rng.choice([0, 1, 2 ** 31, 2 ** 32 - 1,
                                                       rng.getrandbits(32)]))
        elif op == 5:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            b[i:] = other[j:]
    if b and rng.random() < 0.9:
        b[0] = rng.choice([1, 3])
    return bytes(b)


def fallback(run, seeds: list[bytes], corpus: Path, structured: bool = False) -> None:
    """Seeded mutation loop (no coverage feedback) for ``FUZZ_SECONDS``; a failing input is
    written to the corpus folder's parent as crash-<n> before its exception propagates."""
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
    if structured:
        def mutate(data: bytes, pool) -> bytes:
            return structured_mutator(data, 1 << 20, rng.getrandbits(32),
                                      lambda d, _max: _mutate(rng, d, pool)[1:] or d)
    else:
        def mutate(data: bytes, pool) -> bytes:
            return _mutate(rng, data, pool)
    seconds = float(os.environ.get("FUZZ_SECONDS", "60"))
    end, count = time.monotonic() + seconds, 0

    def alarm(*_):
        raise TimeoutError(f"input ran over {TIMEOUT_S} s")
    signal.signal(signal.SIGALRM, alarm)
    while time.monotonic() < end:
        data = mutate(rng.choice(seeds), seeds)
        signal.alarm(TIMEOUT_S)
        try:
            run(data)
        except BaseException:
            (corpus.parent / f"crash-{count}").write_bytes(data)
            raise
        finally:
            signal.alarm(0)
        count += 1
    print(f"fallback: {count} executions in {seconds:g} s", file=sys.stderr)


def attempt(fn, *args, **kwargs):
    """``fn(...)``, or None when it raises a project error (anything else escapes)."""
    from neuralcodec.errors import NeuralCodecError
    try:
        return fn(*args, **kwargs)
    except NeuralCodecError:
        return None
