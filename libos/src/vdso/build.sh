#!/bin/sh
# Rebuilds vdso.so from vdso.c and vdso.lds (Debian 12's gcc 12). The
# result is committed; `cargo test -p libos vdso_image_is_built_from_its_source`
# rebuilds it into a temporary file and compares.
set -e
cd "$(dirname "$0")"
OUT=${1:-vdso.so}
gcc -O2 -fPIC -shared -nostdlib -fno-stack-protector -fno-asynchronous-unwind-tables \
    -fno-ident -mno-red-zone -mcmodel=small -fvisibility=default \
    -Wl,-T,vdso.lds -Wl,-soname=linux-vdso.so.1 -Wl,--hash-style=both \
    -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,--no-undefined \
    -o "$OUT" vdso.c
