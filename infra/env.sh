# Environment of the local stack; sourced by the Makefile's scripts.
# The AWS SDK's own variables point every client at the emulator, so no code
# path knows it runs locally.
# The local stack's calls go to its endpoint (AWS_ENDPOINT_URL): a shell's
# AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would send them to real AWS, and a
# service's own endpoint variable would win over it.
unset AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SESV2 AWS_ENDPOINT_URL_SSM
# The emulator is plain HTTP: a shell's AWS_CA_BUNDLE (some machines point it
# at the system's ~150 roots) would only be parsed at every cold start, and
# one naming a missing file would fail it.
unset AWS_CA_BUNDLE
export EMULATOR_PORT="${EMULATOR_PORT:-5005}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${EMULATOR_PORT}}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export TABLE_NAME="${TABLE_NAME:-credits-local}"
export SENDER_EMAIL="${SENDER_EMAIL:-credits@example.com}"
export REFERRAL_BASE_URL="${REFERRAL_BASE_URL:-https://app.example.com/signup}"

# Whether something already listens on 127.0.0.1:$1 (for the scripts that
# serve on a fixed port, so they can say so instead of failing to bind).
port_in_use() {
  "${root:-.}/.venv/bin/python" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)) != 0)"
}
