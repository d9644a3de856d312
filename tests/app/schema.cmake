# tests/app/schema.cmake: tests of the config.toml schema (app/config/schema.c),
# included from tests/app/app.cmake.
#
# app_config_schema: every section and key, the exact text of each error,
# params as JSON, and the project's own config.toml loading cleanly. The
# sample files live in tests/app/configs/.

if(TARGET baton_config AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_schema.c)
  baton_criterion_test(app_config_schema ${CMAKE_CURRENT_LIST_DIR}/test_schema.c)
  if(TARGET test_app_config_schema)
    target_link_libraries(test_app_config_schema PRIVATE baton_config)
    target_compile_definitions(test_app_config_schema PRIVATE
      BATON_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
      BATON_CONFIGS_DIR="${CMAKE_CURRENT_LIST_DIR}/configs")
  endif()
endif()
