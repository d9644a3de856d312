# The resilience actors' bench (bench/actors/bench_resilience.c): breaker
# and limiter through their actors against the same logic called directly.
# Included from bench/CMakeLists.txt; paths are relative to the project.
if(TARGET baton_resilience)
  add_executable(bench_resilience ${PROJECT_SOURCE_DIR}/bench/actors/bench_resilience.c)
  target_link_libraries(bench_resilience PRIVATE baton_resilience bench_harness)

  # Short mode as a smoke test: one small run of each workload.
  if(BATON_TESTS)
    add_test(NAME bench_resilience_short COMMAND bench_resilience --short)
    set_tests_properties(bench_resilience_short PROPERTIES LABELS "bench" TIMEOUT 120
      ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1 suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
    if(COMMAND baton_sanitizer_checks)
      baton_sanitizer_checks(bench_resilience_short)
    endif()
  endif()
endif()
