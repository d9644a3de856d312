# The executor actor and the built-in job kinds (actors/executor/), on top of
# the run store and the resilience actors (see docs/executor.md).
add_library(baton_executor STATIC
  ${CMAKE_CURRENT_LIST_DIR}/executor/executor.c
  ${CMAKE_CURRENT_LIST_DIR}/executor/exec_kind.c
)
target_include_directories(baton_executor PUBLIC ${CMAKE_CURRENT_LIST_DIR}/executor)
target_link_libraries(baton_executor PUBLIC baton_runstore baton_resilience baton_runtime)

# The example job kind, written against the public headers only; run as a test.
if(EXISTS ${PROJECT_SOURCE_DIR}/examples/kind_countdown.c)
  add_executable(example_kind_countdown ${PROJECT_SOURCE_DIR}/examples/kind_countdown.c)
  target_link_libraries(example_kind_countdown PRIVATE baton_executor)
  # Registered as the CTest test examples_kind_countdown by
  # tests/actors/executor.cmake (tests are enabled after this directory).
endif()
