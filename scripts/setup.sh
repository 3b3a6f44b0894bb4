#!/usr/bin/env bash
# Sets up a virtual environment in .venv with aggregator installed (and, with --test, what the
# tests need: the test extras, Debian's Chromium and a PostgreSQL server). Safe to run again.
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
# The store tests run on SQLite and on a real PostgreSQL server (AGGREGATOR_TEST_POSTGRES,
# default postgresql://postgres@127.0.0.1:5432/test, a user that may create databases).
check_postgres() {
    local url=${AGGREGATOR_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
    local probe=(.venv/bin/python -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=5).close()" "$url")
    if "${probe[@]}" 2>/dev/null; then
        return
    fi
    if [[ $(id -u) == 0 && -z "${AGGREGATOR_TEST_POSTGRES:-}" ]]; then
        echo "installing and starting Debian's postgresql for the store tests" >&2
        if ! command -v pg_ctlcluster >/dev/null; then
            (apt-get update -q && apt-get install -y -q postgresql) >/dev/null
        fi
        local version
        version=$(ls /etc/postgresql | sort -n | tail -1)
        pg_ctlcluster "$version" main start 2>/dev/null || true
        # Trust on loopback for the test user, as on the CI machines; the database `test`.
        local hba=/etc/postgresql/$version/main/pg_hba.conf
        if ! grep -q "^host all postgres 127.0.0.1/32 trust" "$hba"; then
            sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
            pg_ctlcluster "$version" main reload
        fi
        su postgres -c "psql -Atc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test"
        if "${probe[@]}"; then
            return
        fi
    fi
    echo "the store tests need PostgreSQL at $url: as root, scripts/setup.sh --test installs" \
        "and starts Debian's postgresql; or set AGGREGATOR_TEST_POSTGRES to a server where" \
        "this user may create databases" >&2
    exit 1
}

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
    check_postgres
else
    "${pip[@]}" install -e .
fi
