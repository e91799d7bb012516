#!/usr/bin/env bash
# Regenerates the golden hessian2 vectors with hessian.js and Caucho Hessian and fails if they
# differ from the copies checked in under dubbo-codec/tests/golden/ (which the Rust tests read).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node peers/node/golden.js > "$tmp/hessianjs.json"
bash peers/java/golden.sh > "$tmp/caucho.json"
status=0
for f in hessianjs caucho; do
  if ! python3 - "$tmp/$f.json" "dubbo-codec/tests/golden/$f.json" <<'PY'
import json, sys
fresh, kept = (json.load(open(p)) for p in sys.argv[1:3])
diff = sorted(k for k in fresh.keys() | kept.keys() if fresh.get(k) != kept.get(k))
if diff:
    print(f"golden vectors drifted in {sys.argv[2]}: {', '.join(diff)}", file=sys.stderr)
    sys.exit(1)
print(f"check-golden: {sys.argv[2]}: {len(kept)} vectors match their generator", file=sys.stderr)
PY
  then status=1; fi
done
exit $status
