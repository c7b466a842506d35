#!/usr/bin/env bash
# Installs what shardlite needs on Debian 12, only what is missing
# (idempotent; apt-get runs only when a package is absent).
set -euo pipefail

PKGS=(
  build-essential autoconf automake pkg-config git
  libsqlite3-dev sqlite3 libuv1-dev zlib1g-dev lemon flatbuffers-compiler
  clang libclang-rt-14-dev python3
  postgresql-client-15 libpq-dev python3-psycopg2 python3-psycopg
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
