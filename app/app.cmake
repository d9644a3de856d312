# app/app.cmake: the service's libraries and tools, included from the
# top-level CMakeLists.txt (paths are spelled from PROJECT_SOURCE_DIR so the
# fragment does not depend on the including directory).
#
# baton_toml: the TOML 1.0 parser behind config.toml (app/config/toml.h).
# toml-decoder: a toml-test decoder over it (TOML on stdin, tagged JSON out).

add_library(baton_toml STATIC ${PROJECT_SOURCE_DIR}/app/config/toml.c)
target_include_directories(baton_toml PUBLIC ${PROJECT_SOURCE_DIR}/app)
target_link_libraries(baton_toml PUBLIC m)

add_executable(toml-decoder ${PROJECT_SOURCE_DIR}/app/config/toml-decoder.c)
target_link_libraries(toml-decoder PRIVATE baton_toml)

# baton_applog: the service's structured logger (app/log.h).
add_library(baton_applog STATIC ${PROJECT_SOURCE_DIR}/app/log.c)
target_include_directories(baton_applog PUBLIC ${PROJECT_SOURCE_DIR}/app)

# The service's parts, each in its own fragment.
include(${PROJECT_SOURCE_DIR}/app/config/schema.cmake OPTIONAL)
include(${PROJECT_SOURCE_DIR}/app/server/server.cmake OPTIONAL)
include(${PROJECT_SOURCE_DIR}/app/cli/cli.cmake OPTIONAL)
include(${PROJECT_SOURCE_DIR}/app/service/service.cmake OPTIONAL)
