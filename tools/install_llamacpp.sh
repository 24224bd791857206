#!/usr/bin/env bash
# llama.cpp for the course's GGUF checks: the npm package node-llama-cpp (pinned), whose llama.cpp comes prebuilt for
# Linux, macOS and Windows (nothing is compiled). Installed under .cache/node-llama-cpp (FTLAB_CACHE), away from the
# course's files. Needs Node.js 20+. Never fails set-up: where it cannot install, it says why in one line, and
# helpers/llamacpp.py says the same where llama.cpp is asked for (notebook 03 section 9 goes on without it).
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=""  # the pin lives in helpers/llamacpp.py; read with bash alone (set-up's up-to-date path has no sed)
while IFS= read -r line; do
  if [[ $line =~ ^VERSION\ =\ \"([0-9.]+)\" ]]; then VERSION=${BASH_REMATCH[1]}; break; fi
done < helpers/llamacpp.py
DEST="${FTLAB_CACHE:-.cache}/node-llama-cpp"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "llama.cpp skipped: no Node.js here (node-llama-cpp $VERSION needs Node.js 20+); the GGUF checks with llama.cpp will say so." >&2
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "llama.cpp skipped: node-llama-cpp $VERSION needs Node.js 20+, this machine has $(node --version)." >&2
  exit 0
fi
have=$(node -p 'require(require("path").resolve(process.argv[1])).version' "$DEST/node_modules/node-llama-cpp/package.json" 2>/dev/null || true)
if [ "$have" = "$VERSION" ]; then exit 0; fi
echo "==> installing llama.cpp (node-llama-cpp $VERSION, prebuilt) into $DEST (about 20 s)"
mkdir -p "$DEST"
[ -f "$DEST/package.json" ] || echo '{"name": "ftlab-llamacpp", "private": true}' > "$DEST/package.json"
log=$(mktemp)
# --ignore-scripts: its postinstall would offer to build llama.cpp from source; the prebuilt binary needs none
if ! npm install --prefix "$DEST" --no-audit --no-fund --ignore-scripts --save-exact "node-llama-cpp@$VERSION" >"$log" 2>&1; then
  echo "llama.cpp could not be installed (the GGUF checks with llama.cpp will say so):" >&2
  tail -n 15 "$log" >&2
fi
rm -f "$log"
exit 0
