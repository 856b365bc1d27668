#!/usr/bin/env bash
# Wheels the device machine lacks for `benchmarks/gpu_product_path.py` (its image has torch, but transformers 5.17,
# no datasets): this venv's versions of the packages `pretrain()` imports, for Python 3.12 on x86_64 Linux, into
# .whl/ (ignored by git; carry it). On the device machine, before the script:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \
#     export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(transformers huggingface_hub tokenizers datasets accelerate safetensors dill multiprocess)
pins=()
for name in "${packages[@]}"; do
  pins+=("$name==$(.venv/bin/python -c "from importlib.metadata import version; print(version('$name'))")")
done
rm -rf .whl && mkdir .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any -d .whl "${pins[@]}"
ls .whl && du -sh .whl
