#!/bin/sh
# Fills each target's corpus with the seed corpus (scripts, stdlib, test scripts).
cd "$(dirname "$0")/.." || exit 1
for t in parse check compile verify; do
  mkdir -p "fuzz/corpus/$t"
  for f in scripts/*.ns stdlib/*.ns tests/golden/*.ns tests/lab/*.ns; do cp "$f" "fuzz/corpus/$t/"; done
done
