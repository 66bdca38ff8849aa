#!/bin/sh
# build.sh OUT: compiles flotilla-shim (shim/c/*.c) into OUT. The Makefile and the tests that need a shim
# (shim/client, sandboxd, e2e through flotilla.dev/shim/testbuild) all build it through this script.
set -eu
out=${1:?usage: shim/build.sh OUT}
dir=$(cd "$(dirname "$0")" && pwd)
exec "${CC:-cc}" -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -static -o "$out" "$dir"/c/*.c
