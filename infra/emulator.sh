#!/usr/bin/env bash
# `make emulator`: the local stack in the foreground for `cargo lambda watch`:
# the emulator on 127.0.0.1:$EMULATOR_PORT, the table, the sender verified.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source infra/env.sh
py="$root/.venv/bin/python"
if port_in_use "$EMULATOR_PORT"; then
  echo "make emulator: port $EMULATOR_PORT is already in use (make run, or another make emulator?)" >&2
  exit 1
fi
"$py" infra/emulator.py --port "$EMULATOR_PORT" &
emulator=$!
trap 'kill $emulator 2>/dev/null; wait $emulator 2>/dev/null' EXIT INT TERM
"$py" infra/bootstrap.py --wait
echo "Emulator ready at $AWS_ENDPOINT_URL (table $TABLE_NAME). Ctrl-C stops it."
wait "$emulator"
