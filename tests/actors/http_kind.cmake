# Tests of the `http` job kind against a local libmicrohttpd pager server
# (tests/actors/pager_server.{h,c}), through the real executor and run store.
if(TARGET baton_http_kind AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_http_kind.c)
  pkg_check_modules(MHD QUIET IMPORTED_TARGET libmicrohttpd)
  pkg_check_modules(CJSON QUIET IMPORTED_TARGET libcjson)
  if(MHD_FOUND AND CJSON_FOUND)
    baton_criterion_test(actors_http_kind test_http_kind.c pager_server.c)
    if(TARGET test_actors_http_kind)
      target_link_libraries(test_actors_http_kind PRIVATE baton_http_kind PkgConfig::MHD
                                                          PkgConfig::CJSON)
    endif()
  else()
    message(STATUS "baton: libmicrohttpd not found; actors_http_kind is not built")
  endif()
endif()
