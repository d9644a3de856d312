# Install rules for running the service: the `baton` binary, the systemd
# unit, the bash completion and the example config. Included (OPTIONAL)
# from the top-level CMakeLists.txt after app/ (so the target `baton`, when
# it is built, exists). docs/install.md describes the result:
#
#   <bindir>/baton
#   <prefix>/lib/systemd/system/baton.service    (BATON_SYSTEMD_UNITDIR)
#   <datadir>/bash-completion/completions/baton
#   <docdir>/config.toml.example                 (the top-level config.toml)
#
# The man pages are cmake/manpages.cmake's.
include(GNUInstallDirs)

# Relative to the prefix, as systemd searches /usr/local/lib/systemd/system
# too; packagers for /usr may point it at
# `pkg-config --variable=systemdsystemunitdir systemd`.
set(BATON_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where `cmake --install` puts baton.service (relative to the prefix, or absolute)")

if(TARGET baton)
  install(TARGETS baton RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  # SYSTEMD_FOUND comes from app/service/service.cmake.
  if(NOT SYSTEMD_FOUND)
    message(WARNING "libsystemd not found: `baton serve` cannot send READY=1, so the "
                    "installed baton.service (Type=notify) would never start; install "
                    "libsystemd-dev, or use Type=exec in a drop-in (docs/install.md)")
  endif()
endif()

# The unit names the installed binary, so it is configured at install time
# with the prefix actually installed to (`cmake --install --prefix X`
# without reconfiguring; DESTDIR is not part of it, as packagers expect),
# like baton.pc in cmake/packaging.cmake.
set(_baton_unit_in ${PROJECT_SOURCE_DIR}/app/systemd/baton.service.in)
set(_baton_unit ${PROJECT_BINARY_DIR}/systemd/baton.service)
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(_baton_bindir_code "set(bindir \"${CMAKE_INSTALL_BINDIR}\")")
else()
  set(_baton_bindir_code "set(bindir \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")")
endif()
install(CODE "
  ${_baton_bindir_code}
  configure_file(\"${_baton_unit_in}\" \"${_baton_unit}\" @ONLY)
")
install(FILES ${_baton_unit} DESTINATION ${BATON_SYSTEMD_UNITDIR})

install(FILES ${PROJECT_SOURCE_DIR}/app/completion/baton.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
  RENAME baton)

# OPTIONAL: the example is the lead's top-level config.toml.
install(FILES ${PROJECT_SOURCE_DIR}/config.toml
  DESTINATION ${CMAKE_INSTALL_DOCDIR}
  RENAME config.toml.example
  OPTIONAL)
