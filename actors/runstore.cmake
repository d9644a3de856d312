# The run store actor (actors/runstore/): SQLite-backed, pinned.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)

add_library(baton_runstore STATIC
  ${CMAKE_CURRENT_LIST_DIR}/runstore/runstore.c
  ${CMAKE_CURRENT_LIST_DIR}/runstore/sqlite_backend.c
  ${CMAKE_CURRENT_LIST_DIR}/runstore/transitions.c
  ${CMAKE_CURRENT_LIST_DIR}/runstore/ids.c
  ${CMAKE_CURRENT_LIST_DIR}/runstore/faultvfs.c
)
target_include_directories(baton_runstore PUBLIC ${CMAKE_CURRENT_LIST_DIR}/runstore)
target_link_libraries(baton_runstore PUBLIC baton_runtime PkgConfig::SQLITE3 Threads::Threads)
