#!/usr/bin/env bash
# Set pktchar up on a fresh machine: Debian packages it uses, then a virtualenv (.venv) with the
# project installed in it. Safe to run again: it installs only what is missing.
#   scripts/setup.sh          runtime: .venv with pktchar; tcpdump, libpcap, ethtool, iproute2
#   scripts/setup.sh --test   also the test tools and pdflatex (texlive) the test suite uses
#
# Debian packages: on a fresh cloud machine unattended-upgrades often holds the package manager's
# locks for minutes after boot; setup waits for them (a line every 30 s says what holds which lock)
# for at most PKTCHAR_APT_LOCK_WAIT seconds (600), then gives up with an error. PKTCHAR_APT_EXTRA adds
# more Debian packages (e.g. "tshark"); PKTCHAR_SKIP_APT=1 skips the Debian packages altogether.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "setup: error: $*" >&2
  exit 1
}

# the locks apt and dpkg take (PKTCHAR_APT_LOCKS replaces the list: tests/test_setup.py holds its own)
APT_LOCKS="${PKTCHAR_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"
LOCK_WAIT="${PKTCHAR_APT_LOCK_WAIT:-600}"
case "$LOCK_WAIT" in '' | *[!0-9]*) die "PKTCHAR_APT_LOCK_WAIT must be a whole number of seconds, got '$LOCK_WAIT'" ;; esac

# The package-manager locks held now, as "LOCK (process PID NAME)", comma-separated; empty when all
# are free. apt and dpkg lock with fcntl(2), which /proc/locks lists by device and inode (flock(2)
# locks too); a waiter's line ("->") holds nothing.
apt_lock_holders() {
  local f id pid name out=""
  for f in $APT_LOCKS; do
    [ -e "$f" ] || continue
    id=$(printf '%02x:%02x:%s' $(stat -c '%Hd %Ld %i' "$f"))
    pid=$(awk -v id="$id" '$2 != "->" && $6 == id { print $5; exit }' /proc/locks 2>/dev/null || true)
    [ -n "$pid" ] || continue
    name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
    out="${out:+$out, }$f (process $pid $name)"
  done
  echo "$out"
}

# Wait until no package-manager lock is held, saying so every 30 s; give up after LOCK_WAIT s.
wait_for_apt() {
  local start=$SECONDS next=0 holders waited
  while holders=$(apt_lock_holders) && [ -n "$holders" ]; do
    waited=$((SECONDS - start))
    if [ "$waited" -ge "$LOCK_WAIT" ]; then
      die "the package manager's lock is still held after ${waited} s: $holders." \
        "Let it finish (on a fresh machine it is usually unattended-upgrades) and run scripts/setup.sh" \
        "again, or wait longer with PKTCHAR_APT_LOCK_WAIT=seconds."
    fi
    if [ "$waited" -ge "$next" ]; then
      echo "setup: waiting for the package manager: $holders; ${waited} s so far, at most ${LOCK_WAIT} s" >&2
      next=$((next + 30))
    fi
    sleep 1
  done
}

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs="tcpdump libpcap0.8 ethtool iproute2"
[ "$want_test" = 1 ] && apt_pkgs="$apt_pkgs tshark texlive-latex-base texlive-latex-recommended texlive-latex-extra lmodern poppler-utils"
apt_pkgs="$apt_pkgs ${PKTCHAR_APT_EXTRA:-}"

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
    # apt-get waits on its own too (DPkg::Lock::Timeout) should the lock be taken again just after
    # wait_for_apt saw it free; it prints its reason when it fails
    wait_for_apt
    $sudo apt-get update -q -o DPkg::Lock::Timeout="$LOCK_WAIT" >/dev/null \
      || die "apt-get update failed (its message is above)"
    wait_for_apt
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout="$LOCK_WAIT" $missing >/dev/null \
      || die "apt-get install$missing failed (its message is above)"
  else
    echo "setup: warning: not root and no sudo, so these Debian packages stay missing:$missing" \
      "(the testbed and LaTeX need them)" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  command -v "$PY" >/dev/null 2>&1 || die "no $PY on PATH (set PYTHON=/path/to/python3.10 or newer)"
  "$PY" -m venv .venv || die "$PY -m venv .venv failed (on Debian: apt-get install python3-venv)"
fi
pip_install() {  # quiet, but show pip's own output (less this machine's index notices) when it fails
  local log
  log=$(mktemp)
  if ! .venv/bin/pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2 || true
    rm -f "$log"
    die "pip install $* failed (pip's output is above)"
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
.venv/bin/python -c "import pktchar, torch, torchvision" \
  || die "the install is broken: .venv/bin/python cannot import pktchar, torch and torchvision"
echo "setup: ready (.venv/bin/pktchar)" >&2
