#!/usr/bin/env bash
# A private copy of the system PostgreSQL 15 for the tests: its programs (hard links or
# copies: PostgreSQL finds its library and share directories relative to the program),
# and its library and share directories as links to the system's files, but for
# hotmesh's own, which the tests install there. So the tests (`cargo pgrx test` writes
# its build in place, and the test cluster loads what the tests installed) never touch
# the hotmesh library of a server running from the system directories.
#   eval "$(scripts/pg-private.sh DIR)"   # sets PG_CONFIG and PGRX_HOME for DIR
# Idempotent; a second run only refreshes the links.
set -euo pipefail
DIR=${1:?usage: pg-private.sh DIR}
SYS_CONFIG=${SYSTEM_PG_CONFIG:-$(command -v pg_config)}
BIN=$("$SYS_CONFIG" --bindir)           # /usr/lib/postgresql/15/bin
PKGLIB=$("$SYS_CONFIG" --pkglibdir)     # /usr/lib/postgresql/15/lib
SHARE=$("$SYS_CONFIG" --sharedir)       # /usr/share/postgresql/15
MAJOR=$("$SYS_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')

# the same layout under DIR (Debian's: lib/postgresql/N/{bin,lib}, share/postgresql/N)
PBIN=$DIR/lib/postgresql/$MAJOR/bin
PLIB=$DIR/lib/postgresql/$MAJOR/lib
PSHARE=$DIR/share/postgresql/$MAJOR
mkdir -p "$PBIN" "$PLIB" "$PSHARE/extension" "$DIR/pgrx"
chmod 755 "$DIR" "$DIR/lib" "$DIR/share" 2>/dev/null || true

# programs: real files (a symlink would lead PostgreSQL back to the system directories)
for f in "$BIN"/*; do
  t=$PBIN/$(basename "$f")
  if [ ! -e "$t" ] || [ "$f" -nt "$t" ]; then
    rm -f "$t"
    ln "$f" "$t" 2>/dev/null || cp -p "$f" "$t"
  fi
done
# everything else: links to the system's files, hotmesh's own excepted
link_all() {
  local from=$1 to=$2
  for f in "$from"/*; do
    case "$(basename "$f")" in hotmesh*|extension) continue ;; esac
    ln -sfn "$f" "$to/$(basename "$f")"
  done
}
link_all "$PKGLIB" "$PLIB"
link_all "$SHARE" "$PSHARE"
link_all "$SHARE/extension" "$PSHARE/extension"
# headers and libraries, as pg_config reports them relative to the programs
for d in include lib/x86_64-linux-gnu; do
  sys=$(cd / && realpath -m "$BIN/../../../../$d")
  [ -e "$sys" ] && [ ! -e "$DIR/$d" ] && ln -sfn "$sys" "$DIR/$d"
done

PG_CONFIG=$PBIN/pg_config
# pgrx reads the pg_config to build and test against from $PGRX_HOME/config.toml
printf '[configs]\npg%s = "%s"\n' "$MAJOR" "$PG_CONFIG" > "$DIR/pgrx/config.toml.new"
if ! cmp -s "$DIR/pgrx/config.toml.new" "$DIR/pgrx/config.toml"; then
  mv "$DIR/pgrx/config.toml.new" "$DIR/pgrx/config.toml"
else
  rm -f "$DIR/pgrx/config.toml.new"
fi
echo "export PG_CONFIG='$PG_CONFIG' PGRX_HOME='$DIR/pgrx'"
