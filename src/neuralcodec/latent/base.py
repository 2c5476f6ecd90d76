"""The latent-codec interface and the stored layout of a module tree's state dict."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn

from neuralcodec.entropy.exact import ExactNet
from neuralcodec.entropy.factorized import FactorizedPrior


class LatentCodec(nn.Module, metaclass=ABCMeta):
    """Codes a latent ``y`` (B, C, H, W) given ``side`` (see the package docstring)."""

    #: coder streams :meth:`compress` returns (fixed by the structure, not by the data)
    stream_count: int = 1

    @abstractmethod
    def forward(self, y: torch.Tensor, side=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training: (y_hat with a straight-through gradient, likelihoods by name)."""

    @abstractmethod
    def compress(self, y: torch.Tensor, side=None) -> tuple[list[bytes], torch.Tensor]:
        """(``stream_count`` coder streams, the decoded latent the decoder reproduces)."""

    @abstractmethod
    def decompress(self, streams: list[bytes], shape, side=None) -> torch.Tensor:
        """The decoded latent of ``shape`` from the streams of :meth:`compress`."""

    def aux_loss(self) -> torch.Tensor:
        """Sum of the factorized priors' quantile losses (zero when there is none)."""
        losses = [m.aux_loss() for m in self.modules() if isinstance(m, FactorizedPrior)]
        return sum(losses) if losses else torch.zeros(())

    @torch.no_grad()
    def update(self) -> None:
        """Build the factorized priors' coding tables and freeze the integer-exact nets."""
        for module in self.modules():
            if isinstance(module, FactorizedPrior):
                module.update()
            elif isinstance(module, ExactNet):
                module.freeze()


class StoredLayout:
    """Prefix renames between a module tree's state-dict keys and the keys it is stored
    under (weights files, hashes, checkpoints). Installed on a module (:meth:`install`),
    ``state_dict()`` gives the stored keys and ``load_state_dict`` takes them, so files
    written before a module moved keep loading (and hashing) as they are."""

    def __init__(self, renames: dict[str, str] | None = None):
        """``renames``: tree prefix -> stored prefix (each ending in ``.``)."""
        self.to_stored: list[tuple[str, str]] = []
        self.to_tree: list[tuple[str, str]] = []
        self.add(renames or {})

    def add(self, renames: dict[str, str]) -> None:
        """More renames (a subclass moving its own modules)."""
        for tree, stored in renames.items():
            if not (tree.endswith(".") and stored.endswith(".")):
                raise ValueError(f"layout prefixes must end in '.': {tree!r} -> {stored!r}")
        pairs = dict(self.to_stored, **renames)
        self.to_stored = sorted(pairs.items(), key=lambda kv: -len(kv[0]))
        self.to_tree = sorted(((s, t) for t, s in pairs.items()), key=lambda kv: -len(kv[0]))

    @staticmethod
    def _rename(key: str, pairs) -> str:
        for old, new in pairs:
            if key.startswith(old):
                return new + key[len(old):]
        return key

    def stored_key(self, key: str) -> str:
        return self._rename(key, self.to_stored)

    def tree_key(self, key: str) -> str:
        return self._rename(key, self.to_tree)

    def _apply(self, state: dict, prefix: str, pairs) -> None:
        items = list(state.items())
        state.clear()
        for key, value in items:
            if key.startswith(prefix):
                key = prefix + self._rename(key[len(prefix):], pairs)
            state[key] = value

    def install(self, module: nn.Module) -> None:
        """Make ``module``'s state dict use the stored keys (saving and loading)."""
        def save(_module, state, prefix, _meta):
            self._apply(state, prefix, self.to_stored)

        def load(_module, state, prefix, *_args):
            self._apply(state, prefix, self.to_tree)

        module.register_state_dict_post_hook(save)
        module.register_load_state_dict_pre_hook(load)


def stored_names(root: nn.Module) -> dict[str, str]:
    """Module path in the tree -> its stored name (the state-dict prefix of its tensors,
    after every :class:`StoredLayout` on the way), for each module whose tensors are all
    stored under one prefix; an outer module keeps a name an inner one would share."""
    stored = {id(t): key for key, t in root.state_dict(keep_vars=True).items()}
    out: dict[str, str] = {}
    taken: set[str] = set()
    for path, module in root.named_modules():
        names = set()
        for rel, tensor in [*module.named_parameters(), *module.named_buffers()]:
            key = stored.get(id(tensor))
            if key is None or not (key == rel or key.endswith("." + rel)):
                names = set()
                break
            names.add(key[:len(key) - len(rel)].rstrip("."))
        if len(names) == 1 and (name := names.pop()) not in taken:
            out[path] = name
            taken.add(name)
    return out
