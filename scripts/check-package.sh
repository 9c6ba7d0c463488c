#!/usr/bin/env bash
# Build the sdist, and the wheel from it, as a user's pip would; install each into
# a fresh virtualenv; check the compiled helpers are active and that the README's
# first command prints what the README shows. CI runs this after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    exit 1
}
expected="$work/readme-output.txt"
sed -n '/output of the README.s first command: begin/,/output of the README.s first command: end/p' \
    README.md | sed '1,2d;$d' | sed '$d' >"$expected"
for artifact in "$work"/dist/*.whl "$work"/dist/*.tar.gz; do
    rm -rf "$work/venv"
    python3 -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install -q "$artifact" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$work/venv/bin/portmatrix" --version | grep -q "compiled helpers active" || {
        echo "check-package: $(basename "$artifact"): $("$work/venv/bin/portmatrix" --version)" >&2
        exit 1
    }
    status=0
    "$work/venv/bin/portmatrix" check captures/thoughtspot-demo.pcap --rules thoughtspot \
        --inventory captures/thoughtspot-demo.inventory.yaml >"$work/got.txt" || status=$?
    [ "$status" -eq 1 ] || { echo "check-package: exit status $status, not 1" >&2; exit 1; }
    diff -u "$expected" "$work/got.txt" >&2 || {
        echo "check-package: $(basename "$artifact"): the README's output differs" >&2
        exit 1
    }
    echo "check-package: $(basename "$artifact"): installs, compiled helpers active, README command ok" >&2
done
