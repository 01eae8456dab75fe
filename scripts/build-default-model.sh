#!/usr/bin/env bash
# Rebuilds the embedded default model (pi_0) in models/default and its report in docs/.
# About 30 minutes on 2 CPU cores. The result depends only on the data and the seed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf models/default
node bin/afd.js pretrain --out models/default --steps 1000 --eval-every 100 --seed 0
node --import tsx scripts/default-model-report.ts
