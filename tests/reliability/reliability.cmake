# tests/reliability/reliability.cmake: the reliability suite (see
# docs/reliability.md), included from tests/CMakeLists.txt.
#
# reliability_lincheck: Criterion tests of the linearizability checker:
# hand-made histories, a correct in-process fake executor (with and
# without a crash), and the three mutants it must catch (label unit).
# reliability_linearizability: lin_record against the real `baton serve`
# over HTTP, short mode, plain and with a kill -9 per history (label
# reliability). reliability_linearizability_long: 200 histories of each
# (label long; run with `ctest -L long`).

add_library(baton_lincheck STATIC ${CMAKE_CURRENT_LIST_DIR}/lincheck.c)
target_include_directories(baton_lincheck PUBLIC ${CMAKE_CURRENT_LIST_DIR})

baton_criterion_test(reliability_lincheck ${CMAKE_CURRENT_LIST_DIR}/test_lincheck.c
                                          ${CMAKE_CURRENT_LIST_DIR}/fake_exec.c)
if(TARGET test_reliability_lincheck)
  find_package(Threads REQUIRED)
  target_link_libraries(test_reliability_lincheck PRIVATE baton_lincheck Threads::Threads)
endif()

if(TARGET baton)
  find_package(CURL REQUIRED)
  find_package(Threads REQUIRED)
  add_executable(lin_record ${CMAKE_CURRENT_LIST_DIR}/lin_record.c
                            ${PROJECT_SOURCE_DIR}/tests/app/e2e.c)
  target_include_directories(lin_record PRIVATE ${PROJECT_SOURCE_DIR}/tests/app)
  target_link_libraries(lin_record PRIVATE baton_lincheck CURL::libcurl PkgConfig::CJSON
                                           Threads::Threads)
  target_compile_definitions(lin_record PRIVATE BATON_BIN="$<TARGET_FILE:baton>")
  add_dependencies(lin_record baton)

  add_test(NAME reliability_linearizability COMMAND lin_record --histories 10 --ops 200)
  add_test(NAME reliability_linearizability_fault
           COMMAND lin_record --histories 10 --ops 200 --fault)
  set_tests_properties(reliability_linearizability reliability_linearizability_fault
                       PROPERTIES LABELS "reliability;e2e" TIMEOUT 900)
  add_test(NAME reliability_linearizability_long COMMAND lin_record --histories 200 --ops 300)
  add_test(NAME reliability_linearizability_long_fault
           COMMAND lin_record --histories 200 --ops 300 --fault)
  set_tests_properties(reliability_linearizability_long reliability_linearizability_long_fault
                       PROPERTIES LABELS "long" TIMEOUT 7200)
  if(COMMAND baton_sanitizer_checks)
    baton_sanitizer_checks(reliability_linearizability)
    baton_sanitizer_checks(reliability_linearizability_fault)
  endif()
endif()
