#!/usr/bin/env bash
# Sets up a virtual environment in .venv with aggregator installed (and, with --test, what the
# tests need: the test extras and Debian's Chromium). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first, pinned: it takes the CPU wheel on this machine's disk instead of a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    "${pip[@]}" install "torch==2.13.0"
fi
if [[ $want_tests == 1 ]]; then
    "${pip[@]}" install -e ".[test]"
    if [[ ! -x /usr/bin/chromium ]]; then
        if [[ $(id -u) == 0 ]]; then
            echo "installing Debian's chromium for the browser tests" >&2
            (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null
        else
            echo "the browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2
            exit 1
        fi
    fi
else
    "${pip[@]}" install -e .
fi
