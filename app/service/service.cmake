# app/service/service.cmake: the `baton` binary (service + CLI), included
# from app/app.cmake after the config, server and CLI libraries.
#
# libsystemd is optional: with it, `baton serve` tells systemd when it is
# ready (Type=notify) and how long its drain may take.

# Built once all its parts exist (they are separate fragments).
if(NOT (TARGET baton_config AND TARGET baton_http AND TARGET baton_cli AND TARGET baton_http_kind))
  return()
endif()

find_package(PkgConfig REQUIRED)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(SYSTEMD IMPORTED_TARGET libsystemd)

add_library(baton_service STATIC
  ${PROJECT_SOURCE_DIR}/app/service/api.c
  ${PROJECT_SOURCE_DIR}/app/service/lock.c
  ${PROJECT_SOURCE_DIR}/app/service/metrics.c
  ${PROJECT_SOURCE_DIR}/app/service/serve.c
)
target_include_directories(baton_service PUBLIC ${PROJECT_SOURCE_DIR}/app)
target_compile_definitions(baton_service PRIVATE BATON_VERSION="${PROJECT_VERSION}")
target_link_libraries(baton_service PUBLIC baton_config baton_http baton_cli baton_executor
                                           baton_http_kind baton_applog PkgConfig::CJSON)
if(SYSTEMD_FOUND)
  target_compile_definitions(baton_service PRIVATE BATON_HAVE_SYSTEMD=1)
  target_link_libraries(baton_service PRIVATE PkgConfig::SYSTEMD)
endif()

add_executable(baton ${PROJECT_SOURCE_DIR}/app/main.c)
target_compile_definitions(baton PRIVATE BATON_VERSION="${PROJECT_VERSION}")
target_link_libraries(baton PRIVATE baton_service)
