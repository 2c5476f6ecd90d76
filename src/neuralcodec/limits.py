"""Size limits shared by the encoder and the decoder (no heavy imports)."""

#: Largest picture (width x height) decoded or encoded by default; `--max-pixels` changes it
#: for `decode`. The bitstream allows up to 2^20 x 2^20 (docs/bitstream.md).
DEFAULT_MAX_PIXELS = 16384 * 16384
