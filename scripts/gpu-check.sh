#!/usr/bin/env bash
# The prepared GPU check, on a machine with a GPU, Python with PyTorch and no Node.js:
# unpacks .gpu-check/bundle.tar.xz (made by `node --import tsx scripts/pack-gpu-check.ts`)
# over this working tree, brings the Vulkan loader where there is none, and runs
# `afd bench gpu` with the bundled Node. One JSON line on stdout (logs on stderr), also
# written to $OUT/gpu-check.json (or .gpu-check/gpu-check.json) after each part.
#
#   bash scripts/gpu-check.sh [afd bench gpu options: --size tiny, --provider webgpu, ...]
#
# From the device tool: carry .gpu-check, and run `bash scripts/gpu-check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=.gpu-check/bundle.tar.xz
if [[ ! -f $bundle ]]; then
  echo "gpu-check: no $bundle here; pack it with \`node --import tsx scripts/pack-gpu-check.ts\` and carry .gpu-check" >&2
  exit 2
fi
SECONDS=0
tar -xJf "$bundle"
echo "gpu-check: unpacked $bundle in $SECONDS s" >&2

# WebGPU (Dawn) runs on Vulkan: the loader, where the machine has none. As root it goes
# where the system's libraries are (docs of the device machine); otherwise beside the bundle.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  if [[ $(id -u) == 0 ]]; then
    for f in .gpu-check/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
  else
    for f in .gpu-check/debs/*.deb; do dpkg -x "$f" .gpu-check/vulkan; done
    export LD_LIBRARY_PATH=$PWD/.gpu-check/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
fi
# NVIDIA's Vulkan driver manifest, where the loader would not look for it.
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -z ${VK_DRIVER_FILES:-} && -f $nvidia_icd ]] && ! compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null && ! compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
if [[ -z ${XDG_RUNTIME_DIR:-} ]]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
fi
export PYTHONUNBUFFERED=1

out=${OUT:-.gpu-check}/gpu-check.json
exec .gpu-check/bin/node bin/afd.js bench gpu --model-shape .gpu-check/smollm2-135m-shape --out "$out" "$@"
