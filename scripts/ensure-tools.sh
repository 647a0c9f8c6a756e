#!/usr/bin/env bash
# Installs Debian's prometheus and prometheus-alertmanager (promtool, amtool) when promtool is
# missing. With CI=true a tool that cannot be installed fails the run instead of skipping tests.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  fi
  if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
    echo "installing Debian's prometheus and prometheus-alertmanager (promtool is missing)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager >/dev/null
    exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "promtool is missing and apt-get is not usable; CI cannot run the full suite" >&2
  exit 1
fi
echo "warning: promtool is missing; tests that need it will be skipped (CI=true makes this fatal)" >&2
