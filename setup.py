"""Build of the native entropy coder (C++17, pybind11; no PyTorch headers)."""
import os
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

# Bit-exact probabilities on every platform: no fused multiply-add contraction,
# no fast-math, no x87.
flags = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fvisibility=hidden"]
if sys.platform == "win32":
    flags = ["/O2", "/fp:precise"]

native = "src/neuralcodec/entropy/native"
ext = Pybind11Extension(
    "neuralcodec.entropy._rans",
    sorted(os.path.join(native, f) for f in os.listdir(native) if f.endswith(".cpp")),
    include_dirs=[native],
    cxx_std=17,
    extra_compile_args=flags,
    extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
