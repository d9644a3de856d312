# tests/app/server.cmake: tests of app/server/, included from
# tests/app/app.cmake.
#
# app_http: Criterion tests of the hardened HTTP server (app/server/http.h)
# over real sockets, with libcurl as the client.

baton_criterion_test(app_http ${CMAKE_CURRENT_LIST_DIR}/test_http.c)
if(TARGET test_app_http)
  if(NOT TARGET PkgConfig::CURL)
    pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
  endif()
  target_link_libraries(test_app_http PRIVATE baton_http PkgConfig::CURL PkgConfig::CJSON)
  set_tests_properties(app_http PROPERTIES TIMEOUT 120)
endif()
