# The resilience actors: circuit breaker, rate limiter with backoff, timeout
# registry (see docs/actors-resilience.md). Written against the public
# runtime header only; headers are included as "breaker.h" etc.
add_library(baton_resilience STATIC
  ${CMAKE_CURRENT_LIST_DIR}/backoff.c
  ${CMAKE_CURRENT_LIST_DIR}/breaker.c
  ${CMAKE_CURRENT_LIST_DIR}/ratelimit.c
  ${CMAKE_CURRENT_LIST_DIR}/timeouts.c
)
target_include_directories(baton_resilience PUBLIC ${PROJECT_SOURCE_DIR}/actors)
target_link_libraries(baton_resilience PUBLIC baton_runtime)
set_target_properties(baton_resilience PROPERTIES C_VISIBILITY_PRESET hidden
                                                  POSITION_INDEPENDENT_CODE ON)
