#!/bin/sh
set -eu
# Defaults a caller may override with -e; a first argument starting with
# '-' is an option for the default program.
: "${GREETER_NAME:=stranger}"
export GREETER_NAME
if [ "${1#-}" != "$1" ]; then
    set -- greeter "$@"
fi
mkdir -p /var/tmp/greeter
exec "$@"
