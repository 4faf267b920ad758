#!/usr/bin/env bash
# Build the acqd fake GenTL producer with the system C compiler.
#
#   tests/fake_genicam/build.sh          -> build/acqd_fake.cti
#   tests/fake_genicam/build.sh --asan   -> build/acqd_fake_asan.cti (AddressSanitizer; LD_PRELOAD libasan)
#
# Rebuilds only when a source (*.c, *.h, *.xml, this script) is newer than the output. The output is written
# under a temporary name and renamed, so concurrent builds never expose a half-written library.
# The absolute path of the .cti is printed as the LAST line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="$here/build"
cc="${CC:-gcc}"

name="acqd_fake.cti"
variant_flags=(-O2)
case "${1:-}" in
"") ;;
--asan)
    name="acqd_fake_asan.cti"
    variant_flags=(-O1 -fsanitize=address -fno-omit-frame-pointer)
    ;;
*)
    echo "usage: $0 [--asan]" >&2
    exit 2
    ;;
esac
out="$out_dir/$name"

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "build.sh: C compiler '$cc' not found; install gcc (e.g. apt-get install gcc) to build the fake GenTL producer" >&2
    exit 127
fi

mkdir -p "$out_dir"
if [[ -f "$out" ]]; then
    newer="$(find "$here" -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' -o -name '*.xml' -o -name build.sh \) \
        -newer "$out" -print -quit)"
    if [[ -z "$newer" ]]; then
        echo "$out"
        exit 0
    fi
fi

tmp="$(mktemp "$out_dir/.${name}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -g -fPIC -shared -pthread -fvisibility=hidden -ffp-contract=off \
    -Wall -Wextra -Werror -Wshadow -Wformat=2 \
    "${variant_flags[@]}" -Wa,-I"$here" -Wl,--no-undefined \
    -o "$tmp" "$here"/*.c -lm
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out" >&2
echo "$out"
