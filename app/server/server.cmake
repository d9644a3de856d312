# app/server/server.cmake: the service's HTTP server layer, included from
# app/app.cmake.
#
# baton_http: the hardened HTTP/1.1 server over libmicrohttpd
# (app/server/http.h), with cJSON for error bodies.
# baton_applog: the logfmt logger (app/log.h), unless another fragment has
# already defined it.

if(NOT TARGET baton_applog)
  add_library(baton_applog STATIC ${PROJECT_SOURCE_DIR}/app/log.c)
  target_include_directories(baton_applog PUBLIC ${PROJECT_SOURCE_DIR}/app)
endif()

find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::MHD)
  pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
endif()
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()

add_library(baton_http STATIC ${PROJECT_SOURCE_DIR}/app/server/http.c)
target_include_directories(baton_http PUBLIC ${PROJECT_SOURCE_DIR}/app)
target_link_libraries(baton_http
  PUBLIC baton_applog Threads::Threads
  PRIVATE PkgConfig::MHD PkgConfig::CJSON)
