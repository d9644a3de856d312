# Tests of the resilience actors (actors/resilience.cmake), all in
# deterministic virtual time.
foreach(t breaker ratelimit backoff timeouts resilience_together)
  baton_criterion_test(actors_${t} ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c)
  if(TARGET test_actors_${t})
    target_link_libraries(test_actors_${t} PRIVATE baton_resilience)
  endif()
endforeach()
