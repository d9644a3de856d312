# Packaging: an installable runtime library for users of baton.
#
# `cmake --install` installs
#   <libdir>/libbaton.so.0.1.0 (SONAME libbaton.so.0) + libbaton.so symlink
#   <libdir>/libbaton.a                     (static, same sources)
#   <includedir>/baton/baton.h              (the public header)
#   <libdir>/pkgconfig/baton.pc             (prefix fixed at install time)
#   <libdir>/cmake/baton/baton-config.cmake, baton-config-version.cmake,
#   baton-targets*.cmake                    (imported baton::baton,
#                                            baton::baton_static)
# The reusable actor libraries (baton_resilience, baton_runstore,
# baton_executor) are not installed yet: their headers are not public API.
# See docs/install.md.
#
# The targets are named baton_shared / baton_static (OUTPUT_NAME baton) so
# that the name `baton` stays free for the service executable.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BATON_SOVERSION ${PROJECT_VERSION_MAJOR})

function(_baton_packaging_lib name kind)
  add_library(${name} ${kind} ${BATON_RUNTIME_SOURCES})
  target_include_directories(${name}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/runtime/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${PROJECT_SOURCE_DIR}/runtime ${CK_INCLUDE_DIR})
  target_link_libraries(${name} PUBLIC Threads::Threads)
  # CK and jemalloc are implementation details. The shared library links
  # them privately. The static one only needs jemalloc's compile flags; its
  # users link both, which the exported target names as plain libraries
  # (-lck -ljemalloc) rather than as this machine's paths.
  if(kind STREQUAL "SHARED")
    target_link_libraries(${name} PRIVATE ${CK_LIBRARY})
    if(BATON_SANITIZE STREQUAL "")
      target_link_libraries(${name} PRIVATE PkgConfig::JEMALLOC)
    endif()
  else()
    target_link_libraries(${name} INTERFACE ck)
    if(BATON_SANITIZE STREQUAL "")
      target_include_directories(${name} PRIVATE
        $<TARGET_PROPERTY:PkgConfig::JEMALLOC,INTERFACE_INCLUDE_DIRECTORIES>)
      target_compile_options(${name} PRIVATE
        $<TARGET_PROPERTY:PkgConfig::JEMALLOC,INTERFACE_COMPILE_OPTIONS>)
      target_link_libraries(${name} INTERFACE jemalloc)
    endif()
  endif()
  if(NOT BATON_SANITIZE STREQUAL "")
    target_compile_definitions(${name} PRIVATE BT_SYSTEM_ALLOCATOR=1)
  endif()
  set_target_properties(${name} PROPERTIES
    OUTPUT_NAME baton
    C_VISIBILITY_PRESET hidden
    POSITION_INDEPENDENT_CODE ON)
endfunction()

_baton_packaging_lib(baton_shared SHARED)
set_target_properties(baton_shared PROPERTIES
  VERSION ${PROJECT_VERSION}
  SOVERSION ${BATON_SOVERSION}
  EXPORT_NAME baton)
# Unresolved symbols in the shared library are a link error, not a
# surprise for the user (not in sanitizer builds: clang leaves the
# sanitizer runtime to the executable).
if(BATON_SANITIZE STREQUAL "")
  target_link_options(baton_shared PRIVATE "LINKER:--no-undefined")
endif()

_baton_packaging_lib(baton_static STATIC)
set_target_properties(baton_static PROPERTIES EXPORT_NAME baton_static)

# ------------------------------------------------------------------ install
install(TARGETS baton_shared baton_static
  EXPORT baton-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/baton
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

set(BATON_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/baton)
install(EXPORT baton-targets
  NAMESPACE baton::
  FILE baton-targets.cmake
  DESTINATION ${BATON_CMAKE_DIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/baton-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton-config.cmake
  INSTALL_DESTINATION ${BATON_CMAKE_DIR})
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton-config-version.cmake
  DESTINATION ${BATON_CMAKE_DIR})

# pkg-config: the file is written at install time, so it names the prefix
# actually installed to (`cmake --install --prefix X` without reconfiguring;
# DESTDIR is not part of it, as packagers expect).
set(BATON_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
foreach(d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(BATON_PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(BATON_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
if(BATON_SANITIZE STREQUAL "")
  set(BATON_PC_LIBS_PRIVATE "-lck -ljemalloc -pthread")
else()
  set(BATON_PC_LIBS_PRIVATE "-lck -pthread")
endif()
# Stage 1 (now): everything but the prefix; @BATON_PC_PREFIX@ survives.
set(BATON_PC_PREFIX "@BATON_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/baton.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton.pc.stage @ONLY)
# Stage 2 (install time): the prefix, then install the result.
install(CODE "
  set(BATON_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/packaging/baton.pc.stage\"
                 \"${CMAKE_CURRENT_BINARY_DIR}/packaging/baton.pc\" @ONLY)
")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/packaging/baton.pc DESTINATION ${BATON_PC_DIR})

# -------------------------------------------------------------------- tests
# Install tests only in the normal build: a sanitizer build's library needs
# the sanitizer runtime in every program linking it, so the out-of-tree
# builds of the test would need the sanitizer flags too (and the TSan build
# runs only the stress tests).
if(BATON_TESTS AND BATON_SANITIZE STREQUAL "")
  include(${PROJECT_SOURCE_DIR}/tests/packaging/packaging.cmake)
endif()
