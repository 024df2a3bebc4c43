#!/usr/bin/env bash
# CI check of the API: `buf lint` (STANDARD + COMMENTS, see buf.yaml), `buf breaking` against the committed
# baseline image proto/api-baseline.binpb (so pagetide.v1 changes only compatibly; after a compatible change,
# refresh the baseline with `cd proto && buf build -o api-baseline.binpb`), and the committed generated code
# equal to a fresh proto/generate.sh run. Exit 1 on a lint error, a breaking change or stale generated code.
# $PYTHON picks the interpreter (default: the repo's .venv/bin/python); buf comes from its scripts
# directory (pip install buf-bin) or else from PATH.
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-$here/../.venv/bin/python}"
case "$py" in
  */*) py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")" ;;
  *) py="$(command -v "$py")" || { echo "check.sh: no interpreter $PYTHON" >&2; exit 1; } ;;
esac
scripts="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
if [ -x "$scripts/buf" ]; then buf="$scripts/buf"
elif command -v buf >/dev/null; then buf="$(command -v buf)"
else echo "check.sh: buf not found (pip install buf-bin)" >&2; exit 1
fi

(cd "$here" && "$buf" lint) || { echo "check.sh: buf lint failed" >&2; exit 1; }
(cd "$here" && "$buf" breaking --against api-baseline.binpb) || {
  echo "check.sh: buf breaking: the API changed incompatibly against proto/api-baseline.binpb" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
PYTHON="$py" bash "$here/generate.sh" "$tmp/gen"
list() { (cd "$1" && ls -1 -- *_pb2.py *_pb2.pyi *_pb2_grpc.py 2>/dev/null | sort); }
stale=0
if [ "$(list "$tmp/gen/pagetide/v1")" != "$(list "$here/pagetide/v1")" ]; then
  diff <(list "$here/pagetide/v1") <(list "$tmp/gen/pagetide/v1") | sed 's/^/  files: /' >&2 || true
  stale=1
fi
for f in $(list "$tmp/gen/pagetide/v1"); do
  if ! cmp -s "$tmp/gen/pagetide/v1/$f" "$here/pagetide/v1/$f"; then
    echo "  differs: proto/pagetide/v1/$f" >&2
    stale=1
  fi
done
if [ "$stale" -ne 0 ]; then
  echo "generated code is stale: run proto/generate.sh" >&2
  exit 1
fi
echo "proto: buf lint clean, no breaking change, generated code fresh"
