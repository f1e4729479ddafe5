#!/bin/sh
# Reads its configuration, then uses coreutils on it.
set -eu
. /etc/app/app.conf
printf '%s\n' "$WORDS" | tr ' ' '\n' | sort | uniq -c | sort -rn | head -n 3
wc -l < /etc/app/app.conf
basename "$GREETING_FILE"
cat "$GREETING_FILE"
