# tests/app/cli.cmake: app_cli, the CLI against a fake API server
# (libmicrohttpd in the test process, canned answers per path, recording
# every request it gets).

baton_criterion_test(app_cli ${CMAKE_CURRENT_LIST_DIR}/test_cli.c)
if(TARGET test_app_cli)
  if(NOT TARGET PkgConfig::MHD)
    pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
  endif()
  target_link_libraries(test_app_cli PRIVATE baton_cli PkgConfig::MHD)
endif()
