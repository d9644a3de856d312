#!/bin/sh
# Usage: test_install.sh CMAKE BUILD_DIR SOURCE_DIR C_COMPILER
#
# Installs BUILD_DIR into a temporary prefix, then builds examples/
# (pingpong, counter, supervised: they use only <baton/baton.h>) out of tree
# against the installed copy, once with pkg-config (shared and static) and
# once with find_package(baton) (baton::baton and baton::baton_static), and
# runs every binary.
set -eu
cmake=$1
build=$2
src=$3
cc=$4
examples="pingpong counter supervised"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

run_examples() { # DIR SUFFIX
  for ex in $examples; do
    bin=$1/$ex$2
    case $ex in
      pingpong) args=20000 ;;
      counter) args="2 20000" ;;
      *) args= ;;
    esac
    step "run $bin $args"
    rc=0
    # shellcheck disable=SC2086  # $args is a word list
    timeout 60 "$bin" $args > "$tmp/out.txt" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$tmp/out.txt"; fail "$bin $args exited $rc"; }
  done
}

loads_installed() { # BINARY: it loads the installed libbaton.so.0
  loaded=$(ldd "$1" | awk '$1 == "libbaton.so.0" { print $3 }')
  if [ -z "$loaded" ] || [ "$(realpath "$loaded")" != "$(realpath "$libdir/libbaton.so.0")" ]; then
    ldd "$1"
    fail "$1 does not load the installed libbaton.so.0"
  fi
}

step "install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install"; }

# Layout.
so=$(find "$prefix" -name 'libbaton.so.0' | head -n 1)
[ -n "$so" ] || fail "libbaton.so.0 not installed"
libdir=$(dirname "$so")
[ -f "$prefix/include/baton/baton.h" ] || fail "include/baton/baton.h not installed"
[ -f "$libdir/libbaton.a" ] || fail "libbaton.a not installed"
[ -L "$libdir/libbaton.so" ] || fail "libbaton.so symlink not installed"
[ -f "$libdir/pkgconfig/baton.pc" ] || fail "baton.pc not installed"
[ -f "$libdir/cmake/baton/baton-config.cmake" ] || fail "baton-config.cmake not installed"
[ -f "$libdir/cmake/baton/baton-config-version.cmake" ] || fail "baton-config-version.cmake not installed"
soname=$(objdump -p "$libdir/libbaton.so.0" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libbaton.so.0" ] || fail "SONAME is '$soname', want libbaton.so.0"
# Only public headers are installed.
extra=$(find "$prefix/include" -type f ! -path "$prefix/include/baton/*")
[ -z "$extra" ] || fail "unexpected installed headers: $extra"

# ------------------------------------------------------------- pkg-config
step "pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists baton || fail "pkg-config does not find baton"
[ "$(pkg-config --modversion baton)" = "$(sed -n 's/^project(baton VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] ||
  fail "pkg-config version $(pkg-config --modversion baton)"
cflags=$(pkg-config --cflags baton)
libs=$(pkg-config --libs baton)
slibs=$(pkg-config --static --libs baton)
pc_libdir=$(pkg-config --variable=libdir baton)
static_deps=$(echo "$slibs" | sed 's/-lbaton//')
echo "cflags: $cflags"
echo "libs: $libs"
echo "static libs: $slibs"
mkdir "$tmp/pc"
for ex in $examples; do
  # -I/-L only from pkg-config: the source tree is not on any path.
  # shellcheck disable=SC2086
  "$cc" -O1 -Wall -Wextra -Werror -Wno-unused-parameter $cflags "$src/examples/$ex.c" -o "$tmp/pc/$ex" $libs -pthread \
    -Wl,-rpath,"$pc_libdir" || fail "pkg-config build of $ex (shared)"
  # Static: the archive by full name, then its private dependencies.
  # shellcheck disable=SC2086
  "$cc" -O1 -Wall -Wextra -Werror -Wno-unused-parameter $cflags "$src/examples/$ex.c" -o "$tmp/pc/$ex-static" \
    "$pc_libdir/libbaton.a" $static_deps ||
    fail "pkg-config build of $ex (static)"
done
loads_installed "$tmp/pc/pingpong"
if ldd "$tmp/pc/pingpong-static" | grep -q libbaton; then
  fail "pingpong-static loads libbaton.so"
fi
run_examples "$tmp/pc" ""
run_examples "$tmp/pc" "-static"

# ----------------------------------------------------------- find_package
step "find_package(baton)"
mkdir "$tmp/cm" "$tmp/cm/build"
cat > "$tmp/cm/CMakeLists.txt" <<CMEOF
cmake_minimum_required(VERSION 3.20)
project(baton_consumer LANGUAGES C)
find_package(baton 0.1 REQUIRED)
foreach(ex $examples)
  add_executable(\${ex} "$src/examples/\${ex}.c")
  target_link_libraries(\${ex} PRIVATE baton::baton)
  add_executable(\${ex}-static "$src/examples/\${ex}.c")
  target_link_libraries(\${ex}-static PRIVATE baton::baton_static)
endforeach()
CMEOF
"$cmake" -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$tmp/cm.log" 2>&1 ||
  { cat "$tmp/cm.log"; fail "configure of the find_package consumer"; }
"$cmake" --build "$tmp/cm/build" -j2 > "$tmp/cm.log" 2>&1 ||
  { cat "$tmp/cm.log"; fail "build of the find_package consumer"; }
loads_installed "$tmp/cm/build/pingpong"
if ldd "$tmp/cm/build/pingpong-static" | grep -q libbaton; then
  fail "pingpong-static (baton::baton_static) loads libbaton.so"
fi
run_examples "$tmp/cm/build" ""
run_examples "$tmp/cm/build" "-static"

# A too-new major version must be refused.
mkdir "$tmp/cmv"
cat > "$tmp/cmv/CMakeLists.txt" <<CMEOF
cmake_minimum_required(VERSION 3.20)
project(baton_version_check NONE)
find_package(baton 1.0 QUIET)
if(baton_FOUND)
  message(FATAL_ERROR "find_package(baton 1.0) accepted version \${baton_VERSION}")
endif()
CMEOF
"$cmake" -S "$tmp/cmv" -B "$tmp/cmv/build" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/cm.log" 2>&1 ||
  { cat "$tmp/cm.log"; fail "find_package(baton 1.0) was not refused"; }

echo "packaging_install: OK"
