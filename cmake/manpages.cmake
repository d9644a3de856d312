# Man pages baton(1) and baton.toml(5), built from the docs themselves:
# docs/man/baton.1.md and docs/man/baton.toml.5.md are short preambles
# (NAME, SYNOPSIS, ...) that include docs/cli.md and docs/config.md, turned
# into man(7) by docs/man/md2man.sh with cmark-gfm (Debian: cmark-gfm).
# Included (OPTIONAL) from the top-level CMakeLists.txt.
#
# Without cmark-gfm the pages are not built or installed (a status
# message says so). With it, target baton_manpages (part of `all`)
# writes <build>/man/baton.1 and baton.toml.5 and `cmake --install`
# installs them to <mandir>/man1 and man5.
#
# BATON_MANPAGES lists the built pages (the tests read it).
include(GNUInstallDirs)

set(BATON_MANPAGES "")
find_program(BATON_CMARK_GFM cmark-gfm)
if(NOT BATON_CMARK_GFM)
  message(STATUS "cmark-gfm not found: man pages are not built (Debian: apt install cmark-gfm)")
  return()
endif()

set(_baton_man_dir ${PROJECT_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${_baton_man_dir})

# _baton_manpage(PREAMBLE NAME SECTION): one page from docs/man/PREAMBLE.
function(_baton_manpage preamble name section)
  set(src ${PROJECT_SOURCE_DIR}/docs/man/${preamble})
  set(out ${_baton_man_dir}/${name}.${section})
  # The included docs are dependencies. A missing one skips the page (with
  # a warning) and makes CMake look again when docs/ changes.
  set(deps ${src} ${PROJECT_SOURCE_DIR}/docs/man/md2man.sh)
  file(STRINGS ${src} includes REGEX "^<!-- include [^ ]+( until .+)? -->$")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^<!-- include ([^ ]+).*$" "\\1" path "${line}")
    get_filename_component(path ${path} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR}/docs/man)
    if(NOT EXISTS ${path})
      message(WARNING "man page ${name}(${section}) not built: ${path} is missing")
      get_filename_component(dir ${path} DIRECTORY)
      set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${dir})
      return()
    endif()
    list(APPEND deps ${path})
  endforeach()
  add_custom_command(OUTPUT ${out}
    COMMAND sh ${PROJECT_SOURCE_DIR}/docs/man/md2man.sh ${BATON_CMARK_GFM} ${src}
            ${name} ${section} ${PROJECT_VERSION} ${out}
    DEPENDS ${deps}
    COMMENT "Generating man page ${name}(${section})"
    VERBATIM)
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  set(BATON_MANPAGES ${BATON_MANPAGES} ${out} PARENT_SCOPE)
endfunction()

_baton_manpage(baton.1.md baton 1)
_baton_manpage(baton.toml.5.md baton.toml 5)
if(BATON_MANPAGES)
  add_custom_target(baton_manpages ALL DEPENDS ${BATON_MANPAGES})
endif()
