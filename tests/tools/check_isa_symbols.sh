#!/bin/sh
# Fails when an ISA translation unit of ember_cpu (any *_avx2*.o / *_avx512*.o / *_amx*.o) defines weak code
# (nm type W), or when it finds no such unit at all. Such a symbol (an inline function or template
# emitted out of line) is compiled with AVX flags, and the linker may pick that copy for callers
# anywhere in the program, which would then crash on CPUs without AVX. ISA units may only export their plain kernel-entry functions.
# Usage: check_isa_symbols.sh path/to/libember_cpu.a
set -eu
lib="$1"
nm -C --defined-only "$lib" | awk '
  /_(avx(2|512)|amx)[^/]*\.o:$/ { isa = 1; member = $0; units++; next }
  /\.o:$/ { isa = 0; next }
  isa && $2 == "W" { print member " " $0; bad = 1 }  # weak data (V: typeinfo from sanitizers) runs no code
  END { if (units == 0) { print "no ISA translation units found"; exit 1 } exit bad }
' && echo "ok: no weak symbols in the ISA translation units of $lib"
