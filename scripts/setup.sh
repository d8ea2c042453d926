#!/usr/bin/env bash
# Set pktchar up on a fresh machine: Debian packages it uses, then a virtualenv (.venv) with the
# project installed in it. Safe to run again: it installs only what is missing.
#   scripts/setup.sh          runtime: .venv with pktchar; tcpdump, libpcap, ethtool, iproute2
#   scripts/setup.sh --test   also the test tools and pdflatex (texlive) the test suite uses
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs="tcpdump libpcap0.8 ethtool iproute2"
[ "$want_test" = 1 ] && apt_pkgs="$apt_pkgs tshark texlive-latex-base texlive-latex-recommended texlive-latex-extra lmodern"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $apt_pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ] && [ "${PKTCHAR_SKIP_APT:-0}" != 1 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
    echo "setup: installing Debian packages:$missing" >&2
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
  else
    echo "setup: not root and no sudo; missing Debian packages:$missing (the testbed and LaTeX need them)" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
pip_install() {  # quiet, but show pip's own output (less this machine's index notices) when it fails
  local log
  log=$(mktemp)
  if ! .venv/bin/pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2 || true
    rm -f "$log"
    echo "setup: pip install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}
# torch 2.14.1 + torchvision 0.29.1 is the pair that imports on the project machines (pip takes both
# from local disk there); skip when a suitable torch is already in the venv.
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
  echo "setup: installing torch and torchvision (a few minutes)" >&2
  pip_install "torch==${PKTCHAR_TORCH:-2.14.1}" "torchvision==${PKTCHAR_TORCHVISION:-0.29.1}"
fi
extras=""
[ "$want_test" = 1 ] && extras="[dev]"
pip_install -e ".$extras"
.venv/bin/python -c "import pktchar, torch, torchvision" || { echo "setup: the install is broken" >&2; exit 1; }
echo "setup: ready (.venv/bin/pktchar)" >&2
