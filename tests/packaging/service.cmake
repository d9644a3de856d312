# Service packaging tests (included from tests/packaging/packaging.cmake,
# so only in the normal build with tests on). Each is a script; the ones
# needing a tool the machine lacks exit 77, which CTest reports as skipped.
#
# packaging_unit_verify: app/systemd/baton.service.in passes
#   `systemd-analyze verify` (tests/packaging/verify_unit.sh).
# packaging_man_warnings: the built man pages render with
#   `man --warnings -l` and nothing on stderr (check_man.sh).
# packaging_completion: app/completion/baton.bash loads in bash and
#   completes subcommands, options, job names and run ids
#   (test_completion.sh).
# packaging_install_service: `cmake --install` into a temporary prefix
#   puts the binary, unit, completion, example config and man pages where
#   docs/install.md says (test_install_service.sh).
if(TARGET baton)
  set(_baton_bin $<TARGET_FILE:baton>)
  set(_baton_have_bin 1)
else()
  set(_baton_bin "")
  set(_baton_have_bin 0)
endif()
if(BATON_MANPAGES)
  set(_baton_have_man 1)
else()
  set(_baton_have_man 0)
endif()

add_test(NAME packaging_unit_verify
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/verify_unit.sh
          ${PROJECT_SOURCE_DIR}/app/systemd/baton.service.in ${_baton_bin})
add_test(NAME packaging_man_warnings
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_man.sh ${BATON_MANPAGES})
add_test(NAME packaging_completion
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_completion.sh
          ${PROJECT_SOURCE_DIR}/app/completion/baton.bash ${PROJECT_SOURCE_DIR}/config.toml)
add_test(NAME packaging_install_service
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_install_service.sh
          ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR}
          ${_baton_have_bin} ${_baton_have_man})
set_tests_properties(packaging_unit_verify packaging_man_warnings packaging_completion
  PROPERTIES LABELS "packaging" TIMEOUT 60 SKIP_RETURN_CODE 77)
set_tests_properties(packaging_install_service PROPERTIES LABELS "packaging" TIMEOUT 120)
# Both install tests run `cmake --install` on this build tree, which writes
# files into it at install time (baton.pc, baton.service configured with
# the test's prefix) and install_manifest.txt: never at once (ctest -j).
set_tests_properties(packaging_install packaging_install_service PROPERTIES
  RESOURCE_LOCK baton_build_tree_install)
