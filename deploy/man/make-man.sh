#!/usr/bin/env bash
# make-man.sh BINARY OUTPUT.1.gz VERSION "WHAT IT DOES" [INCLUDE.h2m]
# The man page of one of tq's commands, made by help2man from its --help
# (so it never falls behind the flags), with INCLUDE's sections (FILES, SEE
# ALSO) and one section per subcommand holding that subcommand's --help.
set -euo pipefail
bin=$1 out=$2 version=$3 what=$4 include=${5:-}
name=$(basename "$bin")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A config file on the building machine must not change the page.
help=(--help)
help_option=--help
if "$bin" --config '' --help >/dev/null 2>&1; then
  help=(--config '' --help)
  help_option="--config '' --help"  # help2man runs it through the shell
fi

: >"$tmp/extra.h2m"
[ -n "$include" ] && cat "$include" >>"$tmp/extra.h2m"
subs=$("$bin" "${help[@]}" | awk '/^Subcommands:/ { s = 1; next }
  /^[^ ]/ { s = 0 } s && /^  [a-z]/ { print $1 }')
if [ -n "$subs" ]; then
  {
    echo "[SUBCOMMANDS]"
    for sub in $subs; do
      echo ".SS $sub"
      echo ".nf"
      "$bin" "$sub" --help | sed "s#$bin#$name#g; s/\\\\/\\\\e/g; s/^[.']/\\\\\\&&/"
      echo ".fi"
    done
  } >>"$tmp/extra.h2m"
fi
help2man --no-info --no-discard-stderr --version-string="$version" \
  --name="$what" --include="$tmp/extra.h2m" --help-option="$help_option" \
  --output="$tmp/$name.1" "$bin"
gzip -9n <"$tmp/$name.1" >"$out"
