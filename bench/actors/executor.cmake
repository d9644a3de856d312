# The executor benchmark (included from bench/CMakeLists.txt): commands per
# second through the executor against the same store writes sent straight
# to the run store, and pause latency of an exec run against a bare SIGSTOP.
add_executable(bench_executor ${PROJECT_SOURCE_DIR}/bench/actors/bench_executor.c)
target_link_libraries(bench_executor PRIVATE baton_executor bench_harness)

# Smoke test: one short run of each workload, in every build.
if(BATON_TESTS)
  add_test(NAME bench_executor_short COMMAND bench_executor --short)
  set_tests_properties(bench_executor_short PROPERTIES LABELS "bench" TIMEOUT 120)
  if(COMMAND baton_sanitizer_checks)
    baton_sanitizer_checks(bench_executor_short)
  endif()
endif()
