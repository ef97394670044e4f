#!/usr/bin/env bash
# Prepare this checkout: a virtualenv with the pinned dependencies and the compiled English
# catalogue. With --test, also the system packages the tests drive for real (Debian chromium for
# the browser tests, gettext for the translation check).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
if [[ $want_test == 1 ]]; then
  # python-ldap (the [ldap] extra, part of [test]) builds from source; slapd and ldap-utils are the
  # single sign-on tests' own directory server (tests/sso_servers.py)
  ldap_missing=()
  for pkg in libldap2-dev libsasl2-dev slapd ldap-utils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || ldap_missing+=("$pkg")
  done
  command -v gcc >/dev/null || ldap_missing+=(gcc)
  if (( ${#ldap_missing[@]} )); then
    if [[ $(id -u) != 0 ]]; then
      echo "setup: need system packages: ${ldap_missing[*]} (run as root or install them)" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${ldap_missing[@]}" >/dev/null
  fi
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$want_test
if [[ ! -f "$stamp" ]]; then
  .venv/bin/pip install -q --upgrade pip
  if [[ $want_test == 1 ]]; then
    .venv/bin/pip install -q -e ".[test]"
  else
    .venv/bin/pip install -q -e .
  fi
  touch "$stamp"
fi
# ops/locale/*/django.po is the source of the translations; the .mo is built here, not committed
# (pure Python: polib, so the plain demo setup needs no gettext). Only when the .po is newer.
.venv/bin/python scripts/compile_translations.py

if [[ $want_test == 1 ]]; then
  ./scripts/pcsc_setup.sh   # pcscd + vsmartcard-vpcd + pyscard: the PC/SC tests are real
  missing=()
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  command -v xgettext >/dev/null || missing+=(gettext)   # makemessages in tests/test_i18n.py
  if (( ${#missing[@]} )); then
    if [[ $(id -u) != 0 ]]; then
      echo "setup: need system packages: ${missing[*]} (run as root or install them)" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
