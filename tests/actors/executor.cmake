# Tests of the executor actor and its job kinds (actors/executor/).
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_executor.c)
  baton_criterion_test(actors_executor test_executor.c)
  if(TARGET test_actors_executor)
    target_link_libraries(test_actors_executor PRIVATE baton_executor)
  endif()
endif()

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_exec_kind.c)
  baton_criterion_test(actors_exec_kind test_exec_kind.c)
  if(TARGET test_actors_exec_kind)
    target_link_libraries(test_actors_exec_kind PRIVATE baton_executor)
  endif()
endif()

# The example job kind (built by actors/executor.cmake) is run as a test.
if(TARGET example_kind_countdown)
  add_test(NAME examples_kind_countdown COMMAND example_kind_countdown)
  set_tests_properties(examples_kind_countdown PROPERTIES LABELS "example" TIMEOUT 60)
  baton_sanitizer_checks(examples_kind_countdown)
endif()
