#!/usr/bin/env bash
# Regenerate the Python API from the .proto files: proto/pagetide/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py.
# Usage: proto/generate.sh [OUT_DIR]   (default: proto/, i.e. in place). $PYTHON picks the interpreter.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
py="${PYTHON:-$here/../.venv/bin/python}"
cd "$here"
"$py" -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  pagetide/v1/types.proto pagetide/v1/agent.proto pagetide/v1/controller.proto
