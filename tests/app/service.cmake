# tests/app/service.cmake: end-to-end tests of the `baton` binary (service
# and CLI), included from tests/app/app.cmake.
if(TARGET baton)
  find_package(CURL REQUIRED)
  baton_criterion_test(app_service ${CMAKE_CURRENT_LIST_DIR}/test_service.c
                                   ${CMAKE_CURRENT_LIST_DIR}/e2e.c)
  if(TARGET test_app_service)
    target_link_libraries(test_app_service PRIVATE CURL::libcurl PkgConfig::CJSON)
    target_compile_definitions(test_app_service PRIVATE BATON_BIN="$<TARGET_FILE:baton>")
    add_dependencies(test_app_service baton)
    set_tests_properties(app_service PROPERTIES LABELS "unit;e2e" TIMEOUT 600)
  endif()
endif()

# The API handler in process (phases, routing refusals, the JSON guard).
if(TARGET baton_service)
  baton_criterion_test(app_api ${CMAKE_CURRENT_LIST_DIR}/test_api.c)
  if(TARGET test_app_api)
    target_link_libraries(test_app_api PRIVATE baton_service)
  endif()
endif()

# Concurrent clients against the real service, as a plain executable so the
# TSan build runs it too (the service it starts is that build's binary).
if(TARGET baton)
  add_executable(stress_service ${CMAKE_CURRENT_LIST_DIR}/stress_service.c
                                ${CMAKE_CURRENT_LIST_DIR}/e2e.c)
  target_link_libraries(stress_service PRIVATE CURL::libcurl PkgConfig::CJSON Threads::Threads)
  target_compile_definitions(stress_service PRIVATE BATON_BIN="$<TARGET_FILE:baton>")
  add_dependencies(stress_service baton)
  add_test(NAME app_service_stress COMMAND stress_service 5)
  set_tests_properties(app_service_stress PROPERTIES LABELS "stress;tsan;e2e" TIMEOUT 300
    ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1 suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
  baton_sanitizer_checks(app_service_stress)
endif()
