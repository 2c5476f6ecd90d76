"""CompressAI checkpoints -> an imported codec (``neuralcodec import compressai``).

Keys map one to one, after CompressAI's older entropy-bottleneck names
(``_biases.0``, ``_bias0``) are brought to today's (``biases.0``) and a DataParallel
``module.`` prefix is removed:

=========================================  ===========================================
CompressAI                                 level of the imported codec
=========================================  ===========================================
``g_a.*``, ``g_s.*``, ``h_a.*``            the same names (the same layers)
``h_s.<i>.*``                              ``h_s.layers.<i>.*`` (integer-exact ExactNet)
``entropy_bottleneck.*``                   ``y_prior.bottleneck.*`` (factorized) or
                                           ``z_prior.bottleneck.*`` (hyperpriors)
``gaussian_conditional.scale_table``,      ``gaussian.scale_table``, ``gaussian.scale_bound``
``...scale_bound``                         (the other Gaussian tables are not needed)
=========================================  ===========================================

CompressAI's checkerboard models (``elic2022-*``, ``cheng2020-anchor-checkerboard``) are
loaded into CompressAI's own class instead and converted from it
(:mod:`neuralcodec.codecs.compressai_checkerboard`).

The entropy bottleneck's CDF tables are kept when the checkpoint has them (zoo files do)
and built from its weights otherwise (``examples/train.py`` checkpoints), as CompressAI's
``update()`` would.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from neuralcodec.codecs.compressai_checkerboard import CheckerboardLevel, compressai_model
from neuralcodec.codecs.imported import ImportedCheckerboard, ImportedChengCheckerboard, ImportedCodec, \
    ImportedElic, ImportedElicChandelier, ImportedFactorized, ImportedMeanScale, ImportedScaleHyperprior, \
    prepare_for_coding
from neuralcodec.entropy.scale_table import check_table
from neuralcodec.errors import InputError, ModelError
from neuralcodec.importers.checkpoint import Checkpoint, read_checkpoint

#: file names of CompressAI's zoo, e.g. mbt2018-mean-3-723404a8.pth.tar, ...-ms-ssim-3-<hash>...
ZOO_NAME = re.compile(r"^(?P<model>[a-z0-9-]+?)-(?:(?P<metric>ms-ssim)-)?(?P<quality>[1-8])"
                      r"-(?P<hash>[0-9a-f]{8})\.pth\.tar$")
#: the lambdas CompressAI's zoo models were trained with, qualities 1..8
ZOO_LAMBDAS = {"mse": (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800),
               "ms-ssim": (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00)}

_HYPER_KEYS = (("entropy_bottleneck.", "z_prior.bottleneck."), ("h_s.", "h_s.layers."),
               ("gaussian_conditional.scale_table", "gaussian.scale_table"),
               ("gaussian_conditional.scale_bound", "gaussian.scale_bound"))
_IGNORED = ("gaussian_conditional.",)
_TABLES = ("._quantized_cdf", "._offset", "._cdf_length")
_OLD_BOTTLENECK = re.compile(r"^(?P<module>(?:.+\.)?entropy_bottleneck)\._?"
                             r"(?P<kind>matri(?:x|ces)|bias(?:es)?|factors?)\.?(?P<index>\d+)$")


@dataclass(frozen=True)
class Arch:
    codec: type[ImportedCodec]
    #: CompressAI key prefix -> level key prefix; none for the checkerboard models, which are
    #: loaded into CompressAI's own class first and converted from it
    renames: tuple[tuple[str, str], ...] = ()


ARCHS = {
    "bmshj2018-factorized": Arch(ImportedFactorized, (("entropy_bottleneck.", "y_prior.bottleneck."),)),
    "bmshj2018-hyperprior": Arch(ImportedScaleHyperprior, _HYPER_KEYS),
    "mbt2018-mean": Arch(ImportedMeanScale, _HYPER_KEYS),
    "elic2022-official": Arch(ImportedElic),
    "elic2022-chandelier": Arch(ImportedElicChandelier),
    "cheng2020-anchor-checkerboard": Arch(ImportedChengCheckerboard),
}
_SERIAL = ("autoregressive: its masked-convolution context model makes the decoder run the "
           "entropy-parameter network once per latent position, one after another; the "
           "checkerboard and channel-group codecs here decode in a few parallel passes instead")
UNSUPPORTED = {
    "mbt2018": _SERIAL,
    "cheng2020-anchor": _SERIAL,
    "cheng2020-attn": _SERIAL,
    "bmshj2018-factorized-relu": "its ReLU transforms have no counterpart here",
    "latent-codec": "only the checkerboard latent-codec models (elic2022-*, "
                    "cheng2020-anchor-checkerboard) are mapped",
    "vbr": "CompressAI's variable-rate models (*-vbr) scale the quantisation step with the rate "
           "(learned gains and a step-size network); the levels here are fixed-rate",
}


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Today's CompressAI names for the entropy bottleneck's parameters."""
    plural = {"m": "matrices", "b": "biases", "f": "factors"}

    def rename(key: str) -> str:
        match = _OLD_BOTTLENECK.match(key)
        if not match:
            return key
        return f"{match['module']}.{plural[match['kind'][0]]}.{match['index']}"

    return {rename(k): v for k, v in state.items()}


def detect_arch(state: dict[str, torch.Tensor]) -> str | None:
    """The CompressAI architecture a (normalised) state dict belongs to, if recognised."""
    keys = state.keys()
    if any(k.startswith("latent_codec.") for k in keys):
        return _latent_codec_arch(state)
    if "Gain" in state or any(k.startswith("QuantABCD.") for k in keys):
        return "vbr"
    if "context_prediction.weight" in state:
        if any(".conv_b." in k for k in keys):
            return "cheng2020-attn"
        return "cheng2020-anchor" if "g_a.0.conv1.weight" in state else "mbt2018"
    if "g_a.6.weight" not in state:
        return None
    m = state["g_a.6.weight"].shape[0]
    if "h_s.4.weight" in state:
        return {m: "bmshj2018-hyperprior", 2 * m: "mbt2018-mean"}.get(state["h_s.4.weight"].shape[0])
    if "h_a.0.weight" not in state:
        return "bmshj2018-factorized" if "g_a.1.beta" in state else "bmshj2018-factorized-relu"
    return None


def _elic_groups(state: dict) -> list[int]:
    """Channel-group sizes of an ELIC state dict (inputs of each group's context convolution)."""
    groups = []
    while (key := f"latent_codec.y.latent_codec.y{len(groups)}.context_prediction.weight") in state:
        groups.append(int(state[key].shape[1]))
    return groups


def _latent_codec_arch(state: dict) -> str:
    if "latent_codec.y.context_prediction.weight" in state:
        return "cheng2020-anchor-checkerboard"
    groups = _elic_groups(state)
    if len(groups) < 2 or "latent_codec.y.channel_context.y1.0.weight" not in state:
        return "latent-codec"
    # the channel context of group k >= 3 sees all earlier groups (official) or the first and
    # the latest (Chandelier); with fewer groups the two are the same model
    for k in range(3, len(groups)):
        seen = state.get(f"latent_codec.y.channel_context.y{k}.0.weight")
        if seen is not None and seen.shape[1] == groups[0] + groups[k - 1] != sum(groups[:k]):
            return "elic2022-chandelier"
    return "elic2022-official"


def check_arch(arch: str) -> Arch:
    if arch in ARCHS:
        return ARCHS[arch]
    why = f": {UNSUPPORTED[arch]}" if arch in UNSUPPORTED else ""
    raise InputError(f"architecture {arch!r} is not supported{why} (supported: {', '.join(ARCHS)})")


def _mapped_key(key: str, arch: Arch) -> str | None:
    for old, new in arch.renames:
        if key.startswith(old):
            return new + key[len(old):]
    return None if key.startswith(_IGNORED) else key


def _check_keys(mapped: dict, target: dict, required: list[str], foreign: list[str], arch: str,
                where: str) -> None:
    """ModelError on checkpoint keys that are foreign, missing or of another shape."""
    if foreign:
        raise ModelError(f"{where} has keys that no {arch} model has: "
                         f"{', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''}")
    missing = [k for k in required if k not in mapped]
    if missing:
        raise ModelError(f"{where} misses {len(missing)} weights of a {arch} model (first: {missing[0]})")
    for key, value in mapped.items():
        if not key.endswith(_TABLES + ("scale_table",)) and value.shape != target[key].shape:
            raise ModelError(f"{where}: {key} has shape {tuple(value.shape)}, expected "
                             f"{tuple(target[key].shape)}")


def _level_state(level, state: dict[str, torch.Tensor], arch: Arch, where: str) -> dict:
    """The level's state dict with the checkpoint's tensors in place."""
    target = level.state_dict()
    mapped, foreign = {}, []
    for key, value in state.items():
        new = _mapped_key(key, arch)
        if new is None:
            continue
        if new in target:
            mapped[new] = value
        else:
            foreign.append(key)
    required = [k for k, v in level.state_dict(keep_vars=True).items()      # stored names
                if isinstance(v, torch.nn.Parameter) and not k.startswith(("gain.", "inv_gain."))]
    _check_keys(mapped, target, required, foreign, arch.codec.arch, where)
    table = mapped.pop("gaussian.scale_table", None)
    if table is not None and table.numel():            # empty before CompressAI's update()
        try:
            check_table(table.float())
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}") from None
        level.gaussian.scale_table = table.float().clone()
        target["gaussian.scale_table"] = level.gaussian.scale_table
    return {**target, **mapped}


def _renamed_level(state: dict, arch_name: str, where: str):
    """A level of an architecture rebuilt here, its keys renamed from CompressAI's."""
    arch = ARCHS[arch_name]
    for key in ("g_a.0.weight", "g_a.6.weight"):
        if key not in state:
            raise ModelError(f"{where} is not a {arch_name} model (no {key})")
    n, m = int(state["g_a.0.weight"].shape[0]), int(state["g_a.6.weight"].shape[0])
    level = arch.codec.level_class(n, m)
    level.load_state_dict(_level_state(level, state, arch, where))
    return level, {"n": n, "m": m}


def _checkerboard_level(state: dict, arch_name: str, where: str):
    """A level of a checkerboard model: the weights go into CompressAI's class, which is then
    converted (CheckerboardLevel)."""
    if arch_name == "cheng2020-anchor-checkerboard":
        key = "g_a.0.conv1.weight"
        n = int(state[key].shape[0]) if key in state else 0
        m, groups = n, [n]
    else:
        key = "g_a.0.weight"
        n, groups = (int(state[key].shape[0]) if key in state else 0), _elic_groups(state)
        m = sum(groups)
    if not n or not groups:
        raise ModelError(f"{where} is not a {arch_name} model (no {key} or context convolutions)")
    model = compressai_model(arch_name, n, m, groups)
    target = model.state_dict()
    _check_keys(state, target, [k for k, _ in model.named_parameters()], [k for k in state if k not in target],
                arch_name, where)
    model.load_state_dict(state, strict=False)          # CompressAI's: sizes the table buffers
    for board in model.modules():
        if hasattr(board, "gaussian_conditional") and board.gaussian_conditional.scale_table.numel():
            try:
                check_table(board.gaussian_conditional.scale_table.float())
            except ValueError as exc:
                raise ModelError(f"{where}: {exc}") from None
    return CheckerboardLevel(arch_name, n, m, groups, model), {"n": n, "m": m, "groups": groups}


def level_from_checkpoint(ckpt: Checkpoint, arch_name: str):
    """A coding-ready level of ``arch_name`` holding the checkpoint's weights."""
    arch = check_arch(arch_name)
    where = f"checkpoint {ckpt.path.name}"
    state = normalise_keys(ckpt.state)
    found = detect_arch(state)
    if found is not None and found != arch_name:
        hint = f"import it with --arch {found}" if found in ARCHS else f"not supported: {UNSUPPORTED[found]}"
        raise ModelError(f"{where} holds a {found} model, not {arch_name} ({hint})")
    build = _checkerboard_level if issubclass(arch.codec, ImportedCheckerboard) else _renamed_level
    try:
        level, shape = build(state, arch_name, where)
    except RuntimeError as exc:
        raise ModelError(f"{where} does not fit a {arch_name} model: {str(exc).splitlines()[0]}") from None
    tables = any(k.endswith("entropy_bottleneck._quantized_cdf") and v.numel() for k, v in state.items())
    prepare_for_coding(level.eval())
    return level, {**shape, "entropy_tables": "from the checkpoint" if tables else "built on import"}


def zoo_info(ckpt: Checkpoint) -> dict:
    """Quality, metric and lambda from a zoo file name; whether its SHA-256 starts with the
    name's hash (torch.hub's convention)."""
    match = ZOO_NAME.match(ckpt.path.name)
    if not match:
        return {}
    metric, quality = match["metric"] or "mse", int(match["quality"])
    return {"quality": quality, "metric": metric, "lambda": ZOO_LAMBDAS[metric][quality - 1],
            "zoo_hash_ok": ckpt.sha256.startswith(match["hash"])}


def quality_labels(checkpoints: list[Checkpoint], labels: list[float] | None) -> list[float]:
    """Given labels, else the zoo file names' qualities, else 1, 2, ... in the given order."""
    if labels:
        if len(labels) != len(checkpoints):
            raise InputError(f"{len(labels)} --quality-label for {len(checkpoints)} checkpoints")
        return [float(q) for q in labels]
    zoo = [zoo_info(c).get("quality") for c in checkpoints]
    if all(zoo):
        return [float(q) for q in zoo]
    return [float(i + 1) for i in range(len(checkpoints))]


def import_compressai(arch_name: str, paths: list, labels: list[float] | None = None,
                      lambdas: list[float] | None = None) -> ImportedCodec:
    """Read the checkpoints (one per quality) and build the imported codec; its model card
    is ``codec.weights_info`` (written into the weights file's metadata)."""
    arch = check_arch(arch_name)
    if not paths:
        raise InputError("give at least one --checkpoint")
    if lambdas and len(lambdas) != len(paths):
        raise InputError(f"{len(lambdas)} --lmbda for {len(paths)} checkpoints")
    checkpoints = [read_checkpoint(p) for p in paths]
    labels = quality_labels(checkpoints, labels)
    levels, cards = [], []
    for i, (ckpt, label) in enumerate(zip(checkpoints, labels)):
        level, shape = level_from_checkpoint(ckpt, arch_name)
        zoo = zoo_info(ckpt)
        card = {"label": label, "checkpoint": ckpt.path.name, "sha256": ckpt.sha256, "format": ckpt.kind,
                "epoch": ckpt.epoch, "metric": zoo.get("metric"),
                "lambda": lambdas[i] if lambdas else zoo.get("lambda"), **shape}
        if "zoo_hash_ok" in zoo:
            card["zoo_hash_ok"] = zoo["zoo_hash_ok"]
        levels.append(level)
        cards.append(card)
    codec = arch.codec([{k: c[k] for k in ("label", "n", "m", "groups") if k in c} for c in cards], levels)
    codec.weights_info = {"source": "CompressAI", "arch": arch_name,
                          "levels": sorted(cards, key=lambda c: c["label"]), "versions": _versions()}
    return codec.eval()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("neuralcodec", "torch", "compressai"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
