# tests/reliability/recovery.cmake: crash recovery, load and leak tests of
# the real `baton serve` (see docs/reliability.md, "Crash recovery", "Load",
# "Leaks"), included from tests/CMakeLists.txt.
#
# reliability_crash       kill -9 under load, short mode (label reliability)
# reliability_crash_long  the soak: 150 rounds (label long; ctest -L long)
# reliability_load        a burst of 10,000 starts (label reliability)
# reliability_leaks       a serve/shutdown cycle under LeakSanitizer (ASan
#                         build only)
if(NOT TARGET baton)
  return()
endif()
find_package(CURL REQUIRED)
find_package(Threads REQUIRED)
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()
if(NOT TARGET PkgConfig::MHD)
  pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
endif()

set(_rel_dir ${CMAKE_CURRENT_LIST_DIR})
set(_e2e ${PROJECT_SOURCE_DIR}/tests/app/e2e.c)

function(_baton_e2e_target name)
  if(TARGET test_${name})
    target_include_directories(test_${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/app
                                                    ${PROJECT_SOURCE_DIR}/tests/actors)
    target_link_libraries(test_${name} PRIVATE CURL::libcurl PkgConfig::CJSON PkgConfig::MHD
                                               Threads::Threads)
    target_compile_definitions(test_${name} PRIVATE BATON_BIN="$<TARGET_FILE:baton>")
    add_dependencies(test_${name} baton)
  endif()
endfunction()

# Crash recovery.
baton_criterion_test(reliability_crash ${_rel_dir}/test_crash.c ${_e2e}
                                       ${PROJECT_SOURCE_DIR}/tests/actors/pager_server.c)
_baton_e2e_target(reliability_crash)
if(TARGET test_reliability_crash)
  set_tests_properties(reliability_crash PROPERTIES LABELS "reliability;e2e" TIMEOUT 600)
  add_test(NAME reliability_crash_long COMMAND test_reliability_crash --jobs 1)
  set_tests_properties(reliability_crash_long PROPERTIES LABELS "long" TIMEOUT 7200
                                                         ENVIRONMENT "BATON_LONG=1")
  baton_sanitizer_checks(reliability_crash_long)
endif()

# Load.
baton_criterion_test(reliability_load ${_rel_dir}/test_load.c ${_e2e})
_baton_e2e_target(reliability_load)
if(TARGET test_reliability_load)
  # Alone: it asserts a latency bound, which needs the service's CPU.
  set_tests_properties(reliability_load PROPERTIES LABELS "reliability;e2e" TIMEOUT 600
    RUN_SERIAL TRUE)
  if(NOT BATON_SANITIZE STREQUAL "")
    target_compile_definitions(test_reliability_load PRIVATE BATON_LOAD_SANITIZER=1)
  endif()
endif()

# Leaks after a serve/shutdown cycle: LeakSanitizer, so only in the ASan
# build (the system allocator: every allocation is seen). valgrind is not
# used: release builds allocate through jemalloc, which memcheck cannot see
# into (see docs/reliability.md, "Leaks").
if(BATON_SANITIZE STREQUAL "address")
  baton_criterion_test(reliability_leaks ${_rel_dir}/test_leaks.c ${_e2e}
                                         ${PROJECT_SOURCE_DIR}/tests/actors/pager_server.c)
  _baton_e2e_target(reliability_leaks)
  if(TARGET test_reliability_leaks)
    # The positive control's planted leak: this same file as a module.
    add_library(reliability_leak_probe MODULE ${_rel_dir}/test_leaks.c)
    target_compile_definitions(reliability_leak_probe PRIVATE LEAK_PROBE=1)
    add_dependencies(test_reliability_leaks reliability_leak_probe)
    target_compile_definitions(test_reliability_leaks PRIVATE
                               LEAK_PROBE_SO="$<TARGET_FILE:reliability_leak_probe>")
    set_tests_properties(reliability_leaks PROPERTIES LABELS "reliability;e2e" TIMEOUT 600)
  endif()
endif()
