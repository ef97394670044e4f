#!/usr/bin/env bash
# The real PC/SC reader path: system packages (pcscd, the vsmartcard-vpcd virtual reader driver
# the tests plug an emulated card into, and what pyscard needs to build from source) plus
# pyscard itself in .venv. Idempotent: does nothing (and touches no network) when everything
# is already there. Installing system packages needs root; as another user it says what is
# missing and fails. Does not start pcscd: tests/pcsc.py starts it when it is not running.
set -euo pipefail
cd "$(dirname "$0")/.."

PYSCARD=$(grep -o 'pyscard==[0-9.]*' pyproject.toml)  # the pin lives in pyproject's [pcsc] extra

missing=()
for pkg in pcscd vsmartcard-vpcd swig libpcsclite-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v gcc >/dev/null || missing+=(gcc)
if (( ${#missing[@]} )); then
  if [[ $(id -u) != 0 ]]; then
    echo "pcsc_setup: need system packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "pcsc_setup: no .venv: run scripts/setup.sh first" >&2
  exit 1
fi
want=${PYSCARD#*==}
have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("pyscard"))' 2>/dev/null || true)
if [[ "$have" != "$want" ]]; then
  .venv/bin/pip install -q "$PYSCARD"
fi
.venv/bin/python -c 'import smartcard.scard' || {
  echo "pcsc_setup: pyscard is installed but its C extension does not load" >&2
  exit 1
}
