#!/usr/bin/env bash
# usage: tools/unchanged.sh FOLDER MESSAGE COMMAND...
# Runs COMMAND and fails with MESSAGE if it changed, added or removed any file in FOLDER.
set -euo pipefail
folder=$1; msg=$2; shift 2
snapshot() { find "$folder" -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' \
               -not -path '*/__pycache__/*' -exec md5sum {} + | sort -k2; }
before=$(snapshot)
"$@"
after=$(snapshot)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") || true
  echo "FAILED: $msg" >&2
  exit 1
fi
