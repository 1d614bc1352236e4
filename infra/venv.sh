#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtualenv .venv.
#   infra/venv.sh          the test stack: infra/requirements.txt (moto, cfn-lint)
#   infra/venv.sh local    also infra/requirements-local.txt (cargo-lambda)
# Re-installs only when a requirements file changes; prints nothing when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
install() {
  local name="$1" file="$root/infra/$1"
  local stamp="$venv/.$name.sha256" want
  want="$(sha256sum "$file" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v "$python" >/dev/null || { echo "infra/venv.sh: python3 is required" >&2; exit 1; }
  echo "Installing infra/$name into .venv ..."
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
  echo "$want" > "$stamp"
}
install requirements.txt
if [[ "${1:-}" == "local" ]]; then
  install requirements-local.txt
fi
