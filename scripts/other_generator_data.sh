#!/usr/bin/env bash
# The "other generator" data set of the transfer tables (README, Transfer; `scripts/transfer_table.py --other`):
# 1,600 sequences (200 athletes, seed 7) of generator v2, this project's generator as it stood at commit
# c0a5b57, before generator v3 rewrote it (~3-s clips of one rep, cameras 0-45 deg off the front, one
# estimator's error model, no clip structure or time profiles drawn). No model here trained on it.
# The old code runs from a throwaway git worktree with this checkout's .venv.
#   scripts/other_generator_data.sh [OUT] [OVERRIDE...]   (default OUT: data/other-generator-v2; ~1 min on 2 cores)
# Overrides go to that generator's Hydra app: `preset.observation.skeleton=mediapipe33` writes the same motion
# in MediaPipe's 33-point layout, the second layout the independent sets are scored on.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-data/other-generator-v2}")
shift || true
OVERRIDES=""
for override in "$@"; do OVERRIDES+="'$override', "; done
REV=c0a5b57
PY="$PWD/.venv/bin/python"
WORKTREE=$(mktemp -d)/valgusml-v2
git worktree add --quiet --detach "$WORKTREE" "$REV"
trap 'git worktree remove --force "$WORKTREE"' EXIT
# PYTHONPATH puts the worktree's old package ahead of this checkout's editable install, in the generator's
# worker processes too.
cd "$WORKTREE"
PYTHONPATH="$WORKTREE" "$PY" -c "
import sys
import valgusml.synth.generator as generator
assert generator.GENERATOR_VERSION == 2, generator.__file__
from valgusml.cli import main
sys.exit(main(['generate', 'n_athletes=200', 'seed=7', 'out=$OUT', 'progress=false', $OVERRIDES]))
"
