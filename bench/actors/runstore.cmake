# The run store benchmark (included from bench/CMakeLists.txt): durable
# transitions per second, group commit against one transaction per request.
add_executable(bench_runstore ${PROJECT_SOURCE_DIR}/bench/actors/bench_runstore.c)
target_link_libraries(bench_runstore PRIVATE baton_runstore bench_harness)

# Smoke test: one short run per configuration, in every build; under TSan
# it checks the store's pinned actor and its callers.
if(BATON_TESTS)
  add_test(NAME bench_runstore_short COMMAND bench_runstore --short)
  set_tests_properties(bench_runstore_short PROPERTIES LABELS "bench;tsan" TIMEOUT 120
    ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1 suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
  if(COMMAND baton_sanitizer_checks)
    baton_sanitizer_checks(bench_runstore_short)
  endif()
endif()
