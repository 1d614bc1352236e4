#!/usr/bin/env bash
# `make run`: the whole service on this machine. Installs what is missing
# (.venv with the emulator and cargo-lambda), builds every function once (the
# same build as `make test`: one feature set, nothing compiled twice), starts
# the emulator, creates the table, and serves the functions on port 9000:
# `cargo lambda watch --only-lambda-apis` provides the Lambda runtime API and
# the HTTP routes of Cargo.toml's [workspace.metadata.lambda.watch.router],
# and each function runs as its own process against it, as on Lambda.
# Ctrl-C stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/venv.sh local
source infra/env.sh
# Local only: headers stand in for API Gateway's authorizers (see README).
export CREDITS_DEV_IDENTITY_HEADERS=1
export PATH="$root/.venv/bin:$PATH"
py="$root/.venv/bin/python"
watch_port="${WATCH_PORT:-9000}"

for port in "$EMULATOR_PORT" "$watch_port"; do
  if port_in_use "$port"; then
    echo "make run: port $port is already in use (another make run?)" >&2
    exit 1
  fi
done

echo "Building every function (the first time compiles the AWS SDKs; later runs reuse make test's build)..."
source infra/lint-build.sh
# A lint is not a reason to refuse to serve: when the build fails, build again
# with clippy's findings as warnings (this recompiles the workspace's own
# crates, not the SDKs), which shows them, or the compile error that stops
# `make run`. The first attempt's messages are shown only if it succeeds.
mkdir -p .emulator
if cargo build --workspace --bins --quiet 2>.emulator/run-build.log; then
  cat .emulator/run-build.log >&2
else
  echo "make run: the build failed; building again with clippy's lints as warnings (make test keeps them errors)..." >&2
  CLIPPY_ARGS= cargo build --workspace --bins --quiet
fi
"$py" infra/emulator.py --port "$EMULATOR_PORT" --quiet >".emulator/run-emulator.log" 2>&1 &
emulator=$!
watch=""
pids=()
status=0
stop() {
  # A step that failed under `set -e` (the table not created, the watcher
  # not started) ends here too: its status, not 0, is the exit code (Ctrl-C,
  # the way to stop, is not a failure).
  local rc=$?
  trap - EXIT INT TERM
  if (( status == 0 && rc != 0 && ! interrupted )); then
    status=$rc
    echo "make run: a step failed (its message is above; the emulator's and the watcher's logs are .emulator/run-*.log)" >&2
  fi
  echo
  echo "Stopping..."
  for pid in "${pids[@]}" $watch; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}" $watch; do
    wait "$pid" 2>/dev/null || true
  done
  kill "$emulator" 2>/dev/null || true
  wait "$emulator" 2>/dev/null || true
  echo "Stopped."
  exit "$status"
}
interrupted=0
trap stop EXIT
trap 'interrupted=1; stop' INT TERM
"$py" infra/bootstrap.py --wait

# The Stripe webhook runs when there is a signing secret: STRIPE_WEBHOOK_SECRET
# (what `stripe listen` prints) is stored in the emulator's Parameter Store, so
# the function reads it as it does on AWS (README, "Taking payments with Stripe").
if [[ -n "${STRIPE_WEBHOOK_SECRET:-}" ]]; then
  export STRIPE_SECRET_PARAMETER="${STRIPE_SECRET_PARAMETER:-/credits/local/stripe-webhook-secret}"
  "$py" -c "
import boto3, os
boto3.client('ssm', endpoint_url=os.environ['AWS_ENDPOINT_URL']).put_parameter(
    Name=os.environ['STRIPE_SECRET_PARAMETER'], Value=os.environ['STRIPE_WEBHOOK_SECRET'],
    Type='SecureString', Overwrite=True)"
fi
functions=()
for dir in functions/*/; do
  name="$(basename "$dir")"
  if [[ "$name" == stripe-webhook && -z "${STRIPE_SECRET_PARAMETER:-}" ]]; then
    continue
  fi
  functions+=("$name")
done

cat <<INFO

Credits service, locally
  API            http://localhost:${watch_port}/v1/...  (${#functions[@]} functions: ${functions[*]})
  emulator       ${AWS_ENDPOINT_URL}  (DynamoDB table ${TABLE_NAME}, SES; sent emails: ${AWS_ENDPOINT_URL}/moto-api/data.json)
  identity       local only: header 'x-dev-caller: local' stands in for IAM on service routes,
                 'x-dev-user: USER_ID' for the JWT on /v1/me/... routes

Try:
  curl -s -X POST localhost:${watch_port}/v1/signups -H 'x-dev-caller: local' -H 'content-type: application/json' \\
       -d '{"user_id": "alice", "email": "alice@example.com", "plan": "pro"}'
  curl -s -X POST localhost:${watch_port}/v1/purchases -H 'x-dev-caller: local' -H 'content-type: application/json' \\
       -d '{"user_id": "alice", "payment_id": "pay-1", "amount_cents": 1000, "currency": "USD"}'
  curl -s localhost:${watch_port}/v1/me/balance -H 'x-dev-user: alice'
  cargo lambda invoke rollover --data-ascii '{"time": "2030-01-01T00:00:00Z"}'
  make demo        (in another terminal: the scripted story against this service)

Ctrl-C stops everything.

INFO
cargo lambda watch --only-lambda-apis --invoke-port "$watch_port" >".emulator/run-watch.log" 2>&1 &
watch=$!
"$py" -c "
import socket, sys, time
for _ in range(300):
    try:
        socket.create_connection(('127.0.0.1', $watch_port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit('cargo lambda watch did not start; see .emulator/run-watch.log')"
for name in "${functions[@]}"; do
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:${watch_port}/.rt/${name}" AWS_LAMBDA_FUNCTION_NAME="$name" \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 "${CARGO_TARGET_DIR:-target}/debug/${name}" &
  pids+=($!)
done
# Until Ctrl-C, or until a function stops (its log above says why).
wait -n "${pids[@]}" "$watch" || true
echo "a process of the local service stopped; stopping the rest" >&2
status=1
