#!/usr/bin/env bash
# Builds hotmesh and installs it into a PostgreSQL's directories, safely under a running
# server: the build comes first (into target/, while the installed files stay as they
# are), then each file is copied next to its destination under a temporary name and
# renamed over it. A rename is atomic: there is no moment when $libdir/hotmesh is
# missing or half-written, and running processes keep the file they mapped until they
# restart (a new session loads the new library).
#   scripts/install.sh [--release] [--pg-config PATH]
# Without --release the library is a debug build (what the tests use).
set -euo pipefail
# output that goes to a file or a CI log gets no colour codes
source "$(dirname "$0")/plain.sh"
cd "$(dirname "$0")/.."
PROFILE=(--debug)
PG_CONFIG=${PG_CONFIG:-$(command -v pg_config)}
while [ $# -gt 0 ]; do
  case "$1" in
    --release) PROFILE=(); shift ;;
    --pg-config) PG_CONFIG=$2; shift 2 ;;
    *) echo "usage: $0 [--release] [--pg-config PATH]" >&2; exit 2 ;;
  esac
done
SUDO=()
if [ ! -w "$("$PG_CONFIG" --pkglibdir)" ]; then SUDO=(sudo); fi

TARGET=${CARGO_TARGET_DIR:-target}
STAGE=$TARGET/hotmesh-install
rm -rf "$STAGE"
# 1. build: the package holds the library, the control file and the SQL scripts, laid
#    out under their absolute installation paths
plain cargo pgrx package -p hotmesh "${PROFILE[@]}" --pg-config "$PG_CONFIG" --out-dir "$STAGE" >/dev/null

# 2. put each file in place by rename, the library last (its SQL scripts must be there
#    when a new session of a new version asks for them)
install_file() {
  local src=$1 dest=$2 mode=$3
  "${SUDO[@]}" install -D -m "$mode" "$src" "$dest.hotmesh-new.$$"
  "${SUDO[@]}" mv -f "$dest.hotmesh-new.$$" "$dest"
}
while IFS= read -r -d '' f; do
  rel=${f#"$STAGE"}
  case "$rel" in *.so) continue ;; esac
  install_file "$f" "$rel" 0644
done < <(find "$STAGE" -type f -print0)
while IFS= read -r -d '' f; do
  install_file "$f" "${f#"$STAGE"}" 0755
done < <(find "$STAGE" -type f -name '*.so' -print0)
echo "installed hotmesh $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) into $("$PG_CONFIG" --pkglibdir)"
