"""Composable latent codecs: the entropy-coding half of a codec, as pieces that nest.

Every piece is a :class:`~.base.LatentCodec`: ``forward(y, side)`` for training (decoded
latent and likelihoods), ``compress(y, side)`` (coder streams and the decoded latent) and
``decompress(streams, shape, side)``. ``side`` is what conditions the piece: nothing for
:class:`~.factorized.Factorized`, optional features joined to the hyper-synthesis output for
:class:`~.hyperprior.Hyperprior`, entropy parameters for the leaves
(:class:`~.conditional.GaussianConditional`, :class:`~.conditional.Mixture`), and features for :class:`~.channel_groups.ChannelGroups` and :class:`~.checkerboard.Checkerboard`,
which turn them into their inner piece's side. In training ``side`` is float; when coding it
is the fixed-point output of integer-exact networks (:mod:`neuralcodec.entropy.exact`), which
the leaves map onto the coder grid (:mod:`neuralcodec.entropy.param_grid`).

``gmm-ctx`` is ``Hyperprior(Factorized, ChannelGroups(Checkerboard(Mixture)))``; ``elic`` the
same with ``GaussianConditional``; imported CompressAI checkerboard models use the same
:class:`~.checkerboard.Checkerboard`; the video P-frame latent is
``Hyperprior(Factorized, Checkerboard(GaussianConditional))`` with the latent buffer as side.
"""
