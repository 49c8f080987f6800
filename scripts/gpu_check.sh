#!/usr/bin/env bash
# Times the compute bench's TD3+BC update and the paper-size U-Net training
# step (features 1024, batch 16, length 16) on a machine with an NVIDIA GPU:
# on the `webgpu` backend (Deno's WebGPU on the NVIDIA driver through Vulkan)
# and on `tensorflow` where @tensorflow/tfjs-node-gpu can be loaded. The
# project works without any of this; without a GPU the script says so and
# exits 0.
#
#   scripts/gpu_check.sh prepare   on a machine with network access: fills the
#                                  ignored folder .gpu/ with what an offline GPU
#                                  machine lacks (the Vulkan loader packages, a
#                                  Deno binary, the check bundled into one file)
#   scripts/gpu_check.sh [steps]   on the GPU machine, from the repository root
#                                  (with .gpu/ beside it where Deno, the npm
#                                  packages or libvulkan are missing there)
#
# Environment: GPU_CHECK_FEATURES (1024), GPU_CHECK_BATCH (16) size the U-Net;
# the optional argument is the number of timed steps per figure (20).
set -uo pipefail
cd "$(dirname "$0")/.."
kit=.gpu

prepare() {
  set -e
  mkdir -p "$kit"
  # The Vulkan loader and GL vendor libraries, for amd64, as Debian packages.
  local lists
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  local apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  apt-get "${apt[@]}" update >/dev/null
  (cd "$kit" && apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 \
    libglx0 libgles2 >/dev/null)
  rm -rf "$lists"
  # Deno itself, and the check with every npm package it imports in one file.
  gzip -c "$(command -v deno)" >"$kit/deno.gz"
  deno bundle --quiet --platform deno --minify -o "$kit/gpu_check.js" scripts/gpu_check.ts
  du -sh "$kit"
  echo "gpu_check: $kit/ is ready; carry it to the GPU machine (under 64 MiB travels in one piece)"
}

if [ "${1:-}" = prepare ]; then
  prepare
  exit
fi
steps=${1:-20}
features=${GPU_CHECK_FEATURES:-1024}
batch=${GPU_CHECK_BATCH:-16}

# No NVIDIA GPU: nothing to check. A software WebGPU adapter (llvmpipe)
# would run, but its figures say nothing about a GPU.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi absent or finds no device); nothing to check"
  exit 0
fi
nvidia-smi -L

# Vulkan: the loader from .gpu/ where the system has none; the NVIDIA driver's ICD.
if ! ldconfig -p | grep -q libvulkan; then
  if ls "$kit"/*.deb >/dev/null 2>&1; then
    for f in "$kit"/*.deb; do dpkg -x "$f" /; done
    ldconfig
  else
    echo "gpu_check: no libvulkan here and no $kit/*.deb to unpack (run 'scripts/gpu_check.sh prepare' where there is network)"
  fi
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi

# Deno: the one on PATH, else the one in .gpu/.
deno=$(command -v deno || true)
if [ -z "$deno" ] && [ -f "$kit/deno.gz" ]; then
  deno=/tmp/gpu_check_deno
  gzip -dc "$kit/deno.gz" >"$deno" && chmod +x "$deno"
fi
if [ -z "$deno" ]; then
  echo "gpu_check: no deno on PATH and no $kit/deno.gz; nothing was run"
  exit 0
fi
# From source where the npm packages are installed, else the bundle.
if [ -d node_modules/@tensorflow/tfjs-backend-webgpu ]; then
  check=(scripts/gpu_check.ts)
elif [ -f "$kit/gpu_check.js" ]; then
  check=("$kit/gpu_check.js")
else
  echo "gpu_check: neither node_modules nor $kit/gpu_check.js is here; nothing was run"
  exit 0
fi

status=0
for backend in webgpu tensorflow; do
  echo "--- $backend"
  OPENBLAS_NUM_THREADS=1 timeout 600 "$deno" run --allow-all "${check[@]}" "$backend" \
    --features "$features" --batch "$batch" --steps "$steps"
  rc=$?
  # 3: the backend did not start (said why); anything else but 0 is a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "gpu_check: $backend failed (exit $rc)"
    status=1
  fi
done
exit "$status"
