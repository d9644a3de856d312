# tests/app/fuzz.cmake: the API fuzz targets, included from tests/app/app.cmake
# (see docs/reliability.md, "Fuzzing").
#
# app_api_body_fuzz_replay, app_api_route_fuzz_replay: the libFuzzer targets
# tests/app/fuzz/fuzz_api_{body,route}.c run over their committed seed
# corpora by tests/fuzz/replay.c (in place of libFuzzer's driver), in the
# release and ASan+UBSan builds. Not in the TSan build, which runs only the
# plain stress executables (label "tsan"); the targets use a deterministic
# runtime with no threads, so TSan would have nothing to check there.
#
# With -DBATON_FUZZERS=ON and clang (tests/fuzz/run_fuzzers.sh configures
# such a build, with -fsanitize=fuzzer-no-link everywhere): the libFuzzer
# executables fuzz_toml, fuzz_api_body and fuzz_api_route.

option(BATON_FUZZERS "Build the libFuzzer targets (clang only)" OFF)

if(NOT TARGET baton_service)
  return()
endif()

set(BATON_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR}/fuzz)

foreach(target api_body api_route)
  if(NOT BATON_SANITIZE STREQUAL "thread")
    add_executable(fuzz_replay_${target} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay.c
                                         ${BATON_FUZZ_DIR}/fuzz_${target}.c
                                         ${BATON_FUZZ_DIR}/api_harness.c)
    target_link_libraries(fuzz_replay_${target} PRIVATE baton_service)
    add_test(NAME app_${target}_fuzz_replay
             COMMAND fuzz_replay_${target} ${BATON_FUZZ_DIR}/corpus_${target})
    set_tests_properties(app_${target}_fuzz_replay PROPERTIES LABELS "unit;fuzz" TIMEOUT 120)
    if(COMMAND baton_sanitizer_checks)
      baton_sanitizer_checks(app_${target}_fuzz_replay)
    endif()
  endif()

  if(BATON_FUZZERS)
    add_executable(fuzz_${target} ${BATON_FUZZ_DIR}/fuzz_${target}.c
                                  ${BATON_FUZZ_DIR}/api_harness.c)
    target_link_libraries(fuzz_${target} PRIVATE baton_service)
    target_link_options(fuzz_${target} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()

if(BATON_FUZZERS)
  add_executable(fuzz_toml ${BATON_FUZZ_DIR}/fuzz_toml.c)
  target_link_libraries(fuzz_toml PRIVATE baton_toml)
  target_link_options(fuzz_toml PRIVATE -fsanitize=fuzzer)
endif()
