# Tests of the run store actor (actors/runstore/).
baton_criterion_test(actors_runstore test_runstore.c)
if(TARGET test_actors_runstore)
  target_link_libraries(test_actors_runstore PRIVATE baton_runstore)
endif()

# Kill -9 at random points, then reopen and check (a few rounds by default;
# the `long` variant runs 200).
baton_criterion_test(actors_runstore_crash test_runstore_crash.c)
if(TARGET test_actors_runstore_crash)
  target_link_libraries(test_actors_runstore_crash PRIVATE baton_runstore)
  add_test(NAME actors_runstore_crash_long COMMAND test_actors_runstore_crash --jobs 1)
  set_tests_properties(actors_runstore_crash_long PROPERTIES LABELS "long" TIMEOUT 1800
    ENVIRONMENT "RUNSTORE_CRASH_ROUNDS=200")
  baton_sanitizer_checks(actors_runstore_crash_long)
endif()
