#!/usr/bin/env bash
# Compiles GoldenCaucho (Caucho Hessian 4.0.38 golden vectors) into peers/java/build/ and runs it.
# The JSON goes to stdout:  bash peers/java/golden.sh > caucho.json
# Works from any directory. Needs javac/java (17+) and the Debian package libhessian-java.
# HESSIAN_JAR may point at another copy of hessian-4.0.38.jar.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/build"

jar="${HESSIAN_JAR:-}"
if [[ -z "$jar" ]]; then
  for candidate in /usr/share/java/hessian-4.0.38.jar /usr/share/java/hessian.jar; do
    if [[ -f "$candidate" ]]; then
      jar="$candidate"
      break
    fi
  done
fi
if [[ -z "$jar" || ! -f "$jar" ]]; then
  echo "golden.sh: Caucho Hessian jar not found (${HESSIAN_JAR:-/usr/share/java/hessian-4.0.38.jar" \
    "or /usr/share/java/hessian.jar}). Install it with: apt-get install -y libhessian-java" >&2
  exit 2
fi
for tool in javac java; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "golden.sh: $tool not found; a JDK 17+ is needed" >&2
    exit 2
  fi
done

rm -rf "$build"
mkdir -p "$build"
javac -nowarn -encoding UTF-8 -cp "$jar" -d "$build" \
  "$here/GoldenCaucho.java" "$here"/org/apache/dubbo/demo/*.java >&2

exec java \
  --add-opens java.base/java.lang=ALL-UNNAMED \
  --add-opens java.base/java.util=ALL-UNNAMED \
  --add-opens java.base/java.math=ALL-UNNAMED \
  -cp "$build:$jar" GoldenCaucho
