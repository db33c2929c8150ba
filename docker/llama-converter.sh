#!/bin/sh
# Installs llama.cpp's HF -> GGUF converter into the virtualenv, taken from the llama-cpp-python
# sdist of the pinned version, exactly as `make install` does (jobs/methods/gguf.py finds it at
# $VIRTUAL_ENV/opt/llama.cpp/convert_hf_to_gguf.py).  Usage: llama-converter.sh VERSION
set -eu
version=$1
tmp=$(mktemp -d)
pip download -q --no-binary :all: --no-deps -d "$tmp" "llama-cpp-python==$version"
src=llama_cpp_python-$version/vendor/llama.cpp
tar -xzf "$tmp/llama_cpp_python-$version.tar.gz" -C "$tmp" \
  "$src/convert_hf_to_gguf.py" "$src/conversion" "$src/gguf-py"
mkdir -p "$VIRTUAL_ENV/opt/llama.cpp"
cp -r "$tmp/$src/convert_hf_to_gguf.py" "$tmp/$src/conversion" "$tmp/$src/gguf-py" \
  "$VIRTUAL_ENV/opt/llama.cpp/"
rm -rf "$tmp"
