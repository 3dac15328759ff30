#!/usr/bin/env bash
# Builds `target/release/stancekit` with candle's CUDA kernels (`--features cuda`)
# on a machine that has no CUDA toolkit and no GPU: the CUDA 13.0 compiler,
# headers and libraries come from NVIDIA's PyPI wheels, and the driver library
# is a link-time stub (the real one is loaded from the GPU machine's driver).
#
#   scripts/build-cuda.sh [SDK_DIR]        (default: .cuda-sdk, git-ignored)
#
# Environment: CUDA_COMPUTE_CAP (default 90: H100/H200; e.g. 89 for an L4 or
# 80 for an A100), PYTHON (default python3, with pip), CARGO_TARGET_DIR as for cargo.
# The first run downloads 644 MiB of wheels (1.2 GiB unpacked) and compiles
# candle's kernels: 9 min 12 s on the project's 2-core Zen 5 (11 min 24 s on an earlier one). The binary needs, to start, the
# NVIDIA driver (libcuda.so.1) and the CUDA 13 libraries libcublas, libcublasLt,
# libcurand and libcudart (e.g. the `nvidia-cublas`, `nvidia-curand` and
# `nvidia-cuda-runtime` wheels' `nvidia/cu13/lib` on LD_LIBRARY_PATH).
# nvcc must stay at 13.0: a newer one writes PTX that a 13.0 driver rejects.
set -euo pipefail
cd "$(dirname "$0")/.."
sdk=$(mkdir -p "${1:-.cuda-sdk}" && cd "${1:-.cuda-sdk}" && pwd)
root=$sdk/nvidia/cu13

if [ ! -x "$root/bin/nvcc" ] || [ ! -f "$root/lib/stubs/libcuda.so" ]; then
    wheels=$sdk/wheels
    mkdir -p "$wheels"
    "${PYTHON:-python3}" -m pip download --no-deps -q -d "$wheels" \
        nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
        nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
    for wheel in "$wheels"/*.whl; do unzip -q -o "$wheel" 'nvidia/*' -d "$sdk"; done
    rm -rf "$wheels"
    # The wheels ship only versioned names (libcublas.so.13); the linker wants libcublas.so.
    (cd "$root/lib" && for lib in cublas cublasLt curand nvrtc cudart; do
        ln -sf "$(ls lib$lib.so.[0-9]* | head -1)" "lib$lib.so"
    done)
    ln -sfn lib "$root/lib64"
    # No wheel ships libcuda.so (it is the driver's). A stub whose every entry point
    # fails satisfies the linker; named libcuda.so only, it is never loaded at run time.
    mkdir -p "$root/lib/stubs"
    gcc -E -P -I"$root/include" "$root/include/cuda.h" |
        grep -oE '\bcu[A-Z][A-Za-z0-9_]* *\(' | tr -d ' (' | sort -u |
        awk '{ print "int " $1 "(void) { return 34; }" }' >"$root/lib/stubs/cuda_stub.c"
    gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$root/lib/stubs/cuda_stub.c"
fi
"$root/bin/nvcc" --version | tail -1

export CUDA_ROOT=$root CUDA_HOME=$root CUDA_PATH=$root CUDA_TOOLKIT_ROOT_DIR=$root
export PATH=$root/bin:$PATH
# There is no nvidia-smi here to ask, so the target GPU generation is given.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CUDARC_CUDA_VERSION=13000
cargo build --release --features cuda
