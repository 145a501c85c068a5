#!/usr/bin/env bash
# Regenerate the images' Python lock files with hashes (pip install --require-hashes in the Dockerfiles).
# Needs uv (`pip install uv`). The CPU image runs Python 3.11 (python:3.11 slim bookworm), the GPU image
# Ubuntu 24.04's Python 3.12.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
for spec in cpu:3.11 gpu:3.12; do
    kind=${spec%%:*} python=${spec##*:}
    "$UV" pip compile images/requirements.in --generate-hashes --no-emit-package genosynth \
        --override images/torch-excluded.txt --python-version "$python" \
        --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple --no-header \
        --output-file "images/$kind/requirements.lock" --quiet
done
