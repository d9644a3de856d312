# tests/reliability/faults.cmake: store faults injected into a running
# `baton serve` with libfiu (see docs/reliability.md, "Store faults"),
# included from tests/CMakeLists.txt.
#
# reliability_store_faults: a full disk and write errors on SQLite's
# pwrite, and fsync errors on its fdatasync, turned on and off with
# fiu-ctrl in a service started with libfiu's preloads as `fiu-run -x`
# does (label reliability).
#
# Needs fiu-ctrl and libfiu's preload libraries (fiu-utils, libfiu0; in
# .ci/deps.sh). Registered in the
# ASan+UBSan build only: libfiu's POSIX preload wraps malloc, mmap and
# friends, and with jemalloc (the release build's allocator) the service
# hangs at start-up, its threads blocked on jemalloc's mutexes and libfiu's
# rwlock (seen with gdb; jemalloc calls wrapped functions with its locks
# held). The sanitizer builds use the system allocator, whose internal
# calls are not wrapped. TSan builds run no Criterion test.

if(NOT BATON_SANITIZE STREQUAL "address" OR NOT TARGET baton)
  return()
endif()
find_program(BATON_FIU_CTRL fiu-ctrl)
if(NOT BATON_FIU_CTRL OR NOT EXISTS /usr/lib/fiu/fiu_posix_preload.so)
  message(STATUS "libfiu not found (fiu-utils): reliability_store_faults is not built")
  return()
endif()

find_package(CURL REQUIRED)
find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::SQLITE3)
  pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
endif()
baton_criterion_test(reliability_store_faults ${CMAKE_CURRENT_LIST_DIR}/test_store_faults.c
                                              ${PROJECT_SOURCE_DIR}/tests/app/e2e.c)
if(TARGET test_reliability_store_faults)
  target_include_directories(test_reliability_store_faults PRIVATE ${PROJECT_SOURCE_DIR}/tests/app)
  target_link_libraries(test_reliability_store_faults PRIVATE CURL::libcurl PkgConfig::CJSON
                                                              PkgConfig::SQLITE3)
  target_compile_definitions(test_reliability_store_faults PRIVATE BATON_BIN="$<TARGET_FILE:baton>")
  add_dependencies(test_reliability_store_faults baton)
  # GCC links the ASan runtime dynamically: it is preloaded before libfiu.
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE BATON_ASAN_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
    target_compile_definitions(test_reliability_store_faults
                               PRIVATE BATON_ASAN_RUNTIME="${BATON_ASAN_RUNTIME}")
  endif()
  set_tests_properties(reliability_store_faults PROPERTIES LABELS "reliability;e2e" TIMEOUT 900)
endif()
