# The HTTP API benchmark (included from bench/CMakeLists.txt): bench_api, a
# load generator that starts the real `baton serve` and bare_mhd, a bare
# libmicrohttpd server with the service's MHD flags, and measures both in
# one run. Paths are spelled from PROJECT_SOURCE_DIR.
if(TARGET baton AND TARGET PkgConfig::MHD)
  add_executable(bare_mhd ${PROJECT_SOURCE_DIR}/bench/service/bare_mhd.c)
  target_link_libraries(bare_mhd PRIVATE PkgConfig::MHD Threads::Threads)

  add_executable(bench_api ${PROJECT_SOURCE_DIR}/bench/service/bench_api.c)
  target_link_libraries(bench_api PRIVATE bench_harness m)
  # The servers it starts, unless --baton / --bare say otherwise.
  target_compile_definitions(bench_api PRIVATE BATON_BIN="$<TARGET_FILE:baton>"
                                               BARE_MHD_BIN="$<TARGET_FILE:bare_mhd>")
  add_dependencies(bench_api baton bare_mhd)

  # Smoke test: get_run and healthz once each with 64 clients (0.7 s each),
  # startstop with 8 (3.5 s); it fails on any HTTP error or a workload
  # without a figure.
  if(BATON_TESTS)
    add_test(NAME bench_api_short COMMAND bench_api --short)
    set_tests_properties(bench_api_short PROPERTIES LABELS "bench" TIMEOUT 120)
    if(COMMAND baton_sanitizer_checks)
      baton_sanitizer_checks(bench_api_short)
    endif()
  endif()
endif()
