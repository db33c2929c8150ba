#!/bin/sh
# Installs llama.cpp's HF -> GGUF converter and its tools (llama-bench, llama-imatrix, llama-quantize,
# llama-perplexity) into the virtualenv, both from the llama-cpp-python sdist of the pinned version,
# exactly as `make install` does: jobs/methods/gguf.py finds the converter at
# $VIRTUAL_ENV/opt/llama.cpp/convert_hf_to_gguf.py, jobs/llama_tools.py the tools in
# $QUANTDASH_LLAMA_TOOLS_DIR (the images set it to $VIRTUAL_ENV/opt/llama.cpp/bin).
# Usage: llama-converter.sh VERSION ["CMAKE FLAGS"]   (the GPU image adds -DGGML_CUDA=on)
set -eu
version=$1
flags=${2:-}
tmp=$(mktemp -d)
pip download -q --no-binary :all: --no-deps -d "$tmp" "llama-cpp-python==$version"
src=llama_cpp_python-$version/vendor/llama.cpp
tar -xzf "$tmp/llama_cpp_python-$version.tar.gz" -C "$tmp" "$src"
mkdir -p "$VIRTUAL_ENV/opt/llama.cpp/bin"
cp -r "$tmp/$src/convert_hf_to_gguf.py" "$tmp/$src/conversion" "$tmp/$src/gguf-py" \
  "$VIRTUAL_ENV/opt/llama.cpp/"
# shellcheck disable=SC2086
cmake -S "$tmp/$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release $flags -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF
cmake --build "$tmp/build" -j"$(nproc)" --target llama-bench llama-imatrix llama-perplexity llama-quantize
cp "$tmp/build/bin/llama-bench" "$tmp/build/bin/llama-imatrix" "$tmp/build/bin/llama-perplexity" "$tmp/build/bin/llama-quantize" \
  "$VIRTUAL_ENV/opt/llama.cpp/bin/"
rm -rf "$tmp"
