#!/usr/bin/env bash
# What the tests need besides Rust: the Python peers they check hptune against (duckdb, optuna,
# optuna-dashboard, backtesting.py, Playwright, psycopg2) in .venv, Chromium for the report test
# (Playwright uses it and downloads no browser of its own) and PostgreSQL for the study-server
# tests (each starts a throwaway server; nothing runs as a service). Debian packages come from apt
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  packages+=(chromium)
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  packages+=(postgresql)
fi
if [ ${#packages[@]} -gt 0 ]; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${packages[@]}"
fi
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
