#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtualenvs.
#   infra/venv.sh          .venv: infra/requirements.txt (moto, cfn-lint)
#   infra/venv.sh local    .venv: also infra/requirements-local.txt (cargo-lambda)
#   infra/venv.sh lint     .venv-lint: infra/requirements-lint.txt (checkov)
#   infra/venv.sh deploy   .venv-sam: infra/requirements-deploy.txt (the AWS SAM CLI)
# .venv's packages are held to infra/constraints.txt.
# Re-installs only when a requirements file (or the constraints) changes;
# prints nothing when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
# A virtualenv whose interpreter runs and whose pip was installed: one cut
# short (Ctrl-C during `python3 -m venv`, or no python3-venv) or left behind by
# a Python upgrade (a dangling bin/python) is made again.
healthy() {
  [[ -x "$1/bin/python" && -x "$1/bin/pip" ]]
}
install() {
  local venv="$root/$1" name="$2" constraints=()
  local file="$root/infra/$name" stamp="$root/$1/.$name.sha256" want
  if [[ "$1" == .venv ]]; then
    constraints=(-c "$root/infra/constraints.txt")
  fi
  want="$(cat "$file" "${constraints[@]:1}" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && healthy "$venv"; then
    return 0
  fi
  command -v "$python" >/dev/null || { echo "infra/venv.sh: python3 is required" >&2; exit 1; }
  echo "Installing infra/$name into $1 ..."
  if ! healthy "$venv"; then
    "$python" -m venv --clear "$venv" || {
      echo "infra/venv.sh: '$python -m venv' failed (on Debian or Ubuntu: apt install python3-venv)" >&2
      exit 1
    }
  fi
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file" "${constraints[@]}" 2>"$venv/.pip.log"; then
    # (pip's errors are shown where there is no retry; the retry shows its own)
    [[ ${#constraints[@]} -gt 0 ]] || { cat "$venv/.pip.log" >&2; exit 1; }
    # The tested set was frozen on one Python (see infra/constraints.txt);
    # another may need other versions of the dependencies.
    echo "infra/venv.sh: the tested versions (infra/constraints.txt) do not install on $("$venv/bin/python" --version); installing the newest that do" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
  fi
  echo "$want" > "$stamp"
}
case "${1:-}" in
  lint) install .venv-lint requirements-lint.txt ;;
  deploy) install .venv-sam requirements-deploy.txt ;;
  local) install .venv requirements.txt; install .venv requirements-local.txt ;;
  *) install .venv requirements.txt ;;
esac
