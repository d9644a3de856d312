# app/config/schema.cmake: the typed schema of config.toml (app/config/schema.h),
# included from app/app.cmake.
#
# baton_config: config.toml -> bt_config_t, on top of the TOML parser. It
# links the resilience actors, whose argument checks validate [breakers],
# [limits] and [timeouts]. From the run store (rs_sync_t) and the executor
# (ex_job_t, ex_recovery_t) it needs only types, so it takes their include
# directories and does not link them (nor SQLite).

add_library(baton_config STATIC ${PROJECT_SOURCE_DIR}/app/config/schema.c)
target_include_directories(baton_config PUBLIC
  ${PROJECT_SOURCE_DIR}/app
  $<TARGET_PROPERTY:baton_runstore,INTERFACE_INCLUDE_DIRECTORIES>
  $<TARGET_PROPERTY:baton_executor,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(baton_config PUBLIC baton_toml baton_resilience)
