#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtualenv .venv with infra/requirements.txt.
# Re-installs only when the requirements change. Prints nothing when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/infra/requirements.txt" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "infra/venv.sh: python3 is required" >&2; exit 1; }
echo "Installing the local stack into .venv (moto, cfn-lint)..."
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/infra/requirements.txt"
echo "$want" > "$stamp"
