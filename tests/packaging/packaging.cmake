# Packaging tests (included from cmake/packaging.cmake in the normal build).
#
# packaging_install: installs the build tree into a temporary prefix and
#   builds examples/ out of tree against it with pkg-config and with
#   find_package(baton), then runs them.
# packaging_symbols: the shared library exports exactly the functions the
#   public header declares with BT_API.
add_test(NAME packaging_install
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/test_install.sh
          ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${CMAKE_C_COMPILER})
set_tests_properties(packaging_install PROPERTIES LABELS "packaging" TIMEOUT 120)

add_test(NAME packaging_symbols
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_symbols.sh
          $<TARGET_FILE:baton_shared> ${PROJECT_SOURCE_DIR}/runtime/include/baton)
set_tests_properties(packaging_symbols PROPERTIES LABELS "packaging" TIMEOUT 30)

# The service: unit, man pages, completion, their install (service.cmake).
include(${CMAKE_CURRENT_LIST_DIR}/service.cmake OPTIONAL)
