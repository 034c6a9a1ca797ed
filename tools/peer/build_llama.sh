#!/bin/sh
# Build llama.cpp's llama-bench and llama-quantize, CPU only, for this machine, from the llama.cpp
# source that the npm package node-llama-cpp carries (the source the speed issue's bar was
# measured with). For developers comparing lfm2.h with llama.cpp; not run by CI; nothing of
# llama.cpp goes into the repository.
#
#   sh tools/peer/build_llama.sh            # -> $PEER/llama.cpp/build/bin/{llama-bench,llama-quantize}
#
# Needs: npm, git, cmake, a C++ compiler; python3-numpy (Debian package) for the GGUF converter
# that run_peer.sh uses. Takes ~15-25 minutes on 2 cores.
#   PEER         work folder (default /tmp/lfm2-peer), outside the repository
#   NLC_VERSION  node-llama-cpp version (default 3.22.1 = llama.cpp release v0.5.0)
#   JOBS         parallel compile jobs (default: number of CPUs)
#   FLAVOR       native (default: -march=native, build/) or avx2 (AVX2 + FMA + F16C only, no
#                AVX-512: what a CPU without AVX-512 runs, for lfm2.h's LFM2_ISA=AVX2; build-avx2/)
set -eu

PEER=${PEER:-/tmp/lfm2-peer}
NLC_VERSION=${NLC_VERSION:-3.22.1}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FLAVOR=${FLAVOR:-native}
case "$FLAVOR" in
    native) BDIR=build; CPUFLAGS="-DGGML_NATIVE=ON" ;;
    avx2) BDIR=build-avx2; CPUFLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF" ;;
    *) echo "FLAVOR must be native or avx2" >&2; exit 2 ;;
esac

mkdir -p "$PEER"
cd "$PEER"

# 1. the npm package (no install scripts, nothing executed): llama/gitRelease.bundle is a git
#    bundle of the llama.cpp tree, llama/patches/*.diff the patches node-llama-cpp applies
if [ ! -f "node-llama-cpp-$NLC_VERSION.tgz" ]; then
    npm pack "node-llama-cpp@$NLC_VERSION" >/dev/null
fi
rm -rf package
tar xzf "node-llama-cpp-$NLC_VERSION.tgz" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
    package/llama/patches
echo "llama.cpp source of node-llama-cpp $NLC_VERSION: $(tr -d '\n ' < package/llama/llama.cpp.info.json)"

# 2. the source tree, with node-llama-cpp's patches (as its build does when they apply)
if [ ! -d llama.cpp/.git ]; then
    git -c advice.detachedHead=false clone -q package/llama/gitRelease.bundle llama.cpp
    for p in package/llama/patches/*.diff; do
        [ -f "$p" ] || continue
        if git -C llama.cpp apply --check "../$p" 2>/dev/null; then
            git -C llama.cpp apply "../$p" && echo "applied $(basename "$p")"
        else
            echo "skipped $(basename "$p") (does not apply / already in)"
        fi
    done
fi
echo "llama.cpp commit: $(git -C llama.cpp rev-parse HEAD)"

# 3. CPU-only Release build with every instruction set of this machine (GGML_NATIVE=ON =
#    -march=native; FLAVOR=avx2: AVX2 only), OpenMP on (ggml's default on Linux, and
#    node-llama-cpp's for a local build)
cmake -S llama.cpp -B llama.cpp/$BDIR -DCMAKE_BUILD_TYPE=Release \
    $CPUFLAGS -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF >/dev/null
cmake --build llama.cpp/$BDIR -j "$JOBS" --target llama-bench llama-quantize

echo "built: $PEER/llama.cpp/$BDIR/bin/llama-bench $PEER/llama.cpp/$BDIR/bin/llama-quantize"
/usr/bin/python3 -c 'import numpy' 2>/dev/null || echo "note: run_peer.sh needs numpy for /usr/bin/python3: apt-get install python3-numpy"
