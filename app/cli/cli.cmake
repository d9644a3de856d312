# app/cli/cli.cmake: baton_cli, the `baton` client commands (start, pause,
# resume, stop, status, runs, events, watch) over libcurl and cJSON; see
# docs/cli.md. Included from app/app.cmake; app/main.c links it.

find_package(CURL REQUIRED)
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()

add_library(baton_cli STATIC
  ${PROJECT_SOURCE_DIR}/app/cli/cli.c
  ${PROJECT_SOURCE_DIR}/app/cli/client.c
  ${PROJECT_SOURCE_DIR}/app/cli/format.c
)
target_include_directories(baton_cli PUBLIC ${PROJECT_SOURCE_DIR}/app)
target_link_libraries(baton_cli PUBLIC CURL::libcurl PkgConfig::CJSON)
target_compile_definitions(baton_cli PRIVATE BATON_CLI_VERSION="${PROJECT_VERSION}")
