# The built-in `http` job kind (actors/executor/http_kind.{h,c}): pages a
# JSON HTTP API with libcurl into a JSON-lines file, exactly once (see
# docs/http-kind.md). Built only when libcurl and cJSON are found; it is an
# extra library on top of baton_executor, so the executor itself does not
# depend on them.
find_package(CURL QUIET)
pkg_check_modules(CJSON QUIET IMPORTED_TARGET libcjson)
if(CURL_FOUND AND CJSON_FOUND)
  add_library(baton_http_kind STATIC ${CMAKE_CURRENT_LIST_DIR}/http_kind.c)
  target_include_directories(baton_http_kind PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(baton_http_kind PUBLIC baton_executor PRIVATE m CURL::libcurl
                                                                      PkgConfig::CJSON)
else()
  message(STATUS "baton: libcurl or cJSON not found; the http job kind is not built")
endif()
