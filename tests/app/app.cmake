# tests/app/app.cmake: tests of app/, included from tests/CMakeLists.txt.
#
# app_toml: Criterion unit tests of the TOML parser (API, error positions and
# messages, limits, typed accessors).
# app_toml_conformance: the toml-test 1.0.0 cases from ../shared/toml-test;
# the two numbers are the valid and invalid cases that must pass (all of
# them today), so conformance can never silently regress.

baton_criterion_test(app_toml ${CMAKE_CURRENT_LIST_DIR}/test_toml.c)
if(TARGET test_app_toml)
  target_link_libraries(test_app_toml PRIVATE baton_toml)
endif()

add_executable(toml_conformance ${CMAKE_CURRENT_LIST_DIR}/toml_conformance.c)
target_link_libraries(toml_conformance PRIVATE baton_toml)
add_test(NAME app_toml_conformance
         COMMAND toml_conformance ${PROJECT_SOURCE_DIR}/../shared/toml-test/tests 210 499)
set_tests_properties(app_toml_conformance PROPERTIES LABELS "unit" TIMEOUT 60)
if(COMMAND baton_sanitizer_checks)
  baton_sanitizer_checks(app_toml_conformance)
endif()

# app_toml_fuzz_replay: the libFuzzer target run over its committed seed
# corpus (tests/fuzz/replay.c stands in for libFuzzer's driver).
add_executable(fuzz_replay_toml ${PROJECT_SOURCE_DIR}/tests/fuzz/replay.c
                                ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_toml.c)
target_link_libraries(fuzz_replay_toml PRIVATE baton_toml)
add_test(NAME app_toml_fuzz_replay
         COMMAND fuzz_replay_toml ${CMAKE_CURRENT_LIST_DIR}/fuzz/corpus)
set_tests_properties(app_toml_fuzz_replay PROPERTIES LABELS "unit;fuzz" TIMEOUT 60)
if(COMMAND baton_sanitizer_checks)
  baton_sanitizer_checks(app_toml_fuzz_replay)
endif()

include(${CMAKE_CURRENT_LIST_DIR}/schema.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/server.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/cli.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/service.cmake OPTIONAL)
include(${CMAKE_CURRENT_LIST_DIR}/fuzz.cmake OPTIONAL)
