#!/usr/bin/env bash
# CI check of the API: buf lint (STANDARD + COMMENTS) and generated code in sync with the .proto files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
buf="$(dirname "$py")/buf"
[ -x "$buf" ] || buf=buf
(cd "$here" && "$buf" lint)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
PYTHON="$py" bash "$here/generate.sh" "$tmp"
for f in "$tmp"/pagetide/v1/*; do
  if ! cmp -s "$f" "$here/pagetide/v1/$(basename "$f")"; then
    echo "generated code is stale: $(basename "$f") differs; run proto/generate.sh" >&2
    exit 1
  fi
done
echo "proto: buf lint clean, generated code fresh"
