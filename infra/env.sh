# Environment of the local stack; sourced by the Makefile's scripts.
# The AWS SDK's own variables point every client at the emulator, so no code
# path knows it runs locally.
export EMULATOR_PORT="${EMULATOR_PORT:-5005}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${EMULATOR_PORT}}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export TABLE_NAME="${TABLE_NAME:-credits-local}"
export SENDER_EMAIL="${SENDER_EMAIL:-credits@example.com}"
export REFERRAL_BASE_URL="${REFERRAL_BASE_URL:-https://app.example.com/signup}"
