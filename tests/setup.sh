#!/usr/bin/env bash
# What the tests need besides Rust: the Python peers they check hptune against (duckdb, optuna,
# optuna-dashboard, backtesting.py, Playwright) in .venv, and Chromium for the report test
# (installed with apt when missing; Playwright uses it and downloads no browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium
fi
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
