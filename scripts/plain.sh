# Sourced by the scripts: output that goes to a file or a CI log carries no colour codes.
# cargo honours CARGO_TERM_COLOR and most tools NO_COLOR; cargo-pgrx honours neither, so
# `plain CMD...` strips the codes from what CMD writes to a stdout or stderr that is not
# a terminal.
if [ ! -t 1 ]; then export NO_COLOR=1 CARGO_TERM_COLOR=never; fi
ANSI_CODES='s/\x1b\[[0-9;]*[A-Za-z]//g'
plain() {
  if [ -t 1 ] && [ -t 2 ]; then
    "$@"
  else
    "$@" > >(sed -u "$ANSI_CODES") 2> >(sed -u "$ANSI_CODES" >&2)
  fi
}
