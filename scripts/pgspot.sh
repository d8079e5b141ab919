#!/usr/bin/env bash
# pgspot (a linter for the security of extension scripts) over the install script and
# every upgrade script: no errors allowed. The warnings left are explained in
# docs/security.md ("What pgspot says").
#   scripts/pgspot.sh [INSTALL_SCRIPT]   # default: the installed hotmesh--<version>.sql
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
INSTALL=${1:-$("${PG_CONFIG:-pg_config}" --sharedir)/extension/hotmesh--$VERSION.sql}
PGSPOT_VERSION=0.9.4
if ! command -v pgspot >/dev/null || [ "$(pgspot --version)" != "pgspot $PGSPOT_VERSION" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "pgspot==$PGSPOT_VERSION"
fi
fail=0
check() {  # FILE [pgspot options]: prints the summary, fails on an error
  local f=$1; shift
  local out; out=$(pgspot "$@" "$f" 2>&1) || true
  local summary; summary=$(printf '%s\n' "$out" | grep 'Errors:' || echo " Errors: ? (pgspot failed)")
  echo "pgspot $(basename "$f"):$summary"
  if ! printf '%s\n' "$summary" | grep -q 'Errors: 0 '; then
    printf '%s\n' "$out" | grep -v '^PS001\|^PS016' >&2
    fail=1
  fi
}
[ -f "$INSTALL" ] || { echo "pgspot: no install script at $INSTALL (run scripts/install.sh first)" >&2; exit 1; }
check "$INSTALL"
for f in sql/hotmesh--*--*.sql; do
  case $f in
    # released before pgspot ran in CI, and never edited since: `'worker'::text` in a
    # view (pg_catalog is searched first in an extension script; see docs/security.md)
    sql/hotmesh--0.2.0--0.3.0.sql) check "$f" --ignore PS017 ;;
    # CREATE OR REPLACE VIEW of hotmesh.streams, in the schema the extension owns (as the
    # functions of PS002): replaced, so its grants and the views that read it stay
    sql/hotmesh--0.10.0--0.11.0.sql) check "$f" --ignore PS015 ;;
    *) check "$f" ;;
  esac
done
exit $fail
