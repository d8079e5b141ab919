#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a working hotmesh toolchain.
# Idempotent: every step checks first, so a second run takes a second or two.
# Needs root, or a user with sudo.
set -euo pipefail
# output that goes to a file or a CI log gets no colour codes
source "$(dirname "$0")/plain.sh"

SUDO=()
if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi

PKGS=(postgresql-15 postgresql-server-dev-15 libclang-dev clang pkg-config libssl-dev
      sudo redis-server nats-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The server and its headers must be the same minor release: the headers only exist
# in the newest one, so upgrade the server with them whenever they differ.
if [ ${#missing[@]} -eq 0 ]; then
  srv=$(dpkg-query -W -f='${Version}' postgresql-15)
  dev=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15)
  [ "$srv" = "$dev" ] || missing+=(postgresql-15 postgresql-server-dev-15)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi

# the CI gates (scripts/test.sh) run rustfmt and clippy
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
# cargo-pgrx 0.18.1 is the newest that builds with rustc 1.95 (0.19 needs 1.96).
if ! cargo pgrx --version 2>/dev/null | grep -qx 'cargo-pgrx 0.18.1'; then
  echo "setup: building cargo-pgrx 0.18.1 (about 8 minutes on 2 cores, once)"
  cargo install cargo-pgrx --version =0.18.1 --locked
fi

# Register the system PostgreSQL 15 with pgrx (downloads nothing). Only when needed:
# rewriting config.toml makes cargo rebuild pgrx-pg-sys.
PGCFG=$(command -v pg_config)
if ! grep -qxF "pg15 = \"$PGCFG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
  cargo pgrx init --pg15 "$PGCFG" >/dev/null
fi
echo "setup: toolchain ready ($(cargo pgrx --version), $(pg_config --version))"
