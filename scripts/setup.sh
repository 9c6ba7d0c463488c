#!/usr/bin/env bash
# Set up portmatrix on a fresh Debian/Ubuntu machine with Python 3.11+:
# system packages (tshark/dumpcap, tcpdump, nfdump for NetFlow/IPFIX), a
# virtualenv in .venv, the package (with pyarrow, for cloud flow logs).
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

testing=""
[ "${1:-}" = "--test" ] && testing=yes
extras="[flowlogs${testing:+,test}]"

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v dumpcap >/dev/null 2>&1 || need+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
# nfdump reads NetFlow/IPFIX files; its nfpcapd turns captures into them (the tests' oracle).
command -v nfdump >/dev/null 2>&1 || need+=(nfdump)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ -n "$testing" ]; then
    # The tests also replay traffic, render the HTML report in a real browser, and
    # check contrib/'s service files with the tools that read them.
    command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
    command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
    command -v ip >/dev/null 2>&1 || need+=(iproute2)  # the drop test floods a veth pair
fi
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing system packages: ${need[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extras"
