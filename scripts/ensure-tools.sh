#!/usr/bin/env bash
# Installs the Debian packages the tests run for real when their command is missing:
#   promtool  -> prometheus, prometheus-alertmanager (promtool, amtool, the servers)
#   kubectl   -> kubernetes-client (its built-in kustomize renders deploy/kustomize)
#   initdb    -> postgresql (the PostgreSQL outbox tests start their own server; Debian keeps
#                its binaries in /usr/lib/postgresql/<major>/bin, off PATH)
# With CI=true a tool that cannot be installed fails the run instead of skipping tests.
set -euo pipefail

missing_packages=()
missing_commands=()
need() {  # need COMMAND PACKAGE...
  local command=$1
  shift
  if ! command -v "$command" >/dev/null 2>&1; then
    missing_commands+=("$command")
    missing_packages+=("$@")
  fi
}
need promtool prometheus prometheus-alertmanager
need kubectl kubernetes-client
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing_commands+=(initdb)
  missing_packages+=(postgresql)
fi

if [ ${#missing_packages[@]} -eq 0 ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  fi
  if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
    echo "installing Debian's ${missing_packages[*]} (missing: ${missing_commands[*]})"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing_packages[@]}" >/dev/null
    exit 0
  fi
fi
if [ "${CI:-}" = "true" ]; then
  echo "${missing_commands[*]} missing and apt-get is not usable; CI cannot run the full suite" >&2
  exit 1
fi
echo "warning: ${missing_commands[*]} missing; tests that need them will be skipped (CI=true makes this fatal)" >&2
