#!/usr/bin/env bash
# Fuzz xmlnest for SECONDS (default 1200) with atheris, seeded from the shared corpus,
# the golden inputs and the committed regressions. New inputs go to fuzz/work/ (ignored);
# crashes to fuzz/crashes/ (one per distinct exception site; fuzzing goes on).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1200}"
python -c 'import atheris' 2>/dev/null || pip install -q atheris
mkdir -p fuzz/work fuzz/crashes
corpus="$(cd .. && pwd)/shared/corpus"
if [ -d "$corpus" ]; then
  find "$corpus" -name '*.xml' -exec cp -n {} fuzz/work/ \;
fi
for f in tests/golden/*/*/*.xml; do cp -n "$f" "fuzz/work/$(echo "$f" | tr / _)"; done
cp -n tests/fuzz_regressions/* fuzz/work/ 2>/dev/null || true
XMLNEST_FUZZ_KEEP_GOING=1 XMLNEST_FUZZ_CRASH_DIR=fuzz/crashes \
  python fuzz/fuzz_xmlnest.py fuzz/work -dict=fuzz/xml.dict -max_len=65536 \
  -timeout=10 -rss_limit_mb=4096 -max_total_time="$secs" -print_final_stats=1
