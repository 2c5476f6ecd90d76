"""Learned video coding: the `video-rt` codec, streaming .ncv files, training."""
