#!/usr/bin/env bash
# Regenerate the Python API from the .proto files: proto/pagetide/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py.
# Usage: proto/generate.sh [OUT_DIR]   (default: proto/, i.e. in place; files land in OUT_DIR/pagetide/v1/).
# $PYTHON picks the interpreter (default: the repo's .venv/bin/python); it must have the grpcio-tools
# version pinned in pyproject.toml, whose bundled protoc makes the output byte-for-byte reproducible.
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
py="${PYTHON:-$here/../.venv/bin/python}"
case "$py" in
  */*) py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")" ;;   # relative paths survive the cd below
  *) py="$(command -v "$py")" || { echo "generate.sh: no interpreter $PYTHON" >&2; exit 1; } ;;
esac
mkdir -p "$out"
out="$(cd "$out" && pwd)"

want="$(sed -n 's/.*"grpcio-tools==\([^"]*\)".*/\1/p' "$here/../pyproject.toml")"
have="$("$py" -c 'from importlib.metadata import version; print(version("grpcio-tools"))' 2>/dev/null)" || {
  echo "generate.sh: grpcio-tools is not installed for $py (pip install -e '.[dev]')" >&2; exit 1; }
if [ -n "$want" ] && [ "$have" != "$want" ]; then
  echo "generate.sh: grpcio-tools $have found, pyproject.toml pins $want (generated code embeds the version)" >&2
  exit 1
fi

cd "$here"
mapfile -t protos < <(printf '%s\n' pagetide/v1/*.proto | sort)
# generated files of a .proto that no longer exists must not linger
mkdir -p "$out/pagetide/v1"
rm -f "$out"/pagetide/v1/*_pb2.py "$out"/pagetide/v1/*_pb2.pyi "$out"/pagetide/v1/*_pb2_grpc.py
"$py" -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${protos[@]}"
