#!/usr/bin/env bash
# Prepare a bare GPU machine (Python 3.12 with torch, no compressai, no network):
# install the carried wheels (.whl: compressai, pybind11, pytorch-msssim) and build
# the native coder in place. Source it: `. scripts/device_setup.sh`.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
python3 setup.py -q build_ext --inplace >/tmp/build.log 2>&1 || { cat /tmp/build.log; return 1; }
