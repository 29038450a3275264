# What `cmake --install` puts where, in three components that are also the
# three Debian packages (cmake/CasenetPackaging.cmake):
#   casenet         the CLI, casenet-bench, libcasenet.so.N, the console's pages
#   casenetd        the broker, its systemd units, sysusers.d and tmpfiles.d
#                   entries, the example /etc/casenet/casenetd.conf and policy.ini
#   libcasenet-dev  casenet.h, casenet.pc, libcasenet.a, the libcasenet.so link
# Man pages go with their program when scdoc is found.

# ---- programs and the library
install(TARGETS casenet casenet-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT casenet)
install(TARGETS casenetd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT casenetd)
install(TARGETS casenet_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  COMPONENT casenet NAMELINK_COMPONENT libcasenet-dev)
install(TARGETS casenet_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  COMPONENT libcasenet-dev)
install(FILES ${PROJECT_SOURCE_DIR}/include/casenet.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT libcasenet-dev)
install(FILES ${PROJECT_BINARY_DIR}/clients/casenet.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT libcasenet-dev)
# casenet console serves these (compiled-in path: clients/cli/CMakeLists.txt)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/clients/console/www/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/casenet/console COMPONENT casenet)

# ---- systemd: units, the casenetd user, its directories
# Where this machine's systemd looks (pkg-config systemd), else the usual
# places under the prefix.
pkg_get_variable(CASENET_SYSTEMD_UNITDIR systemd systemdsystemunitdir)
pkg_get_variable(CASENET_SYSUSERSDIR systemd sysusersdir)
pkg_get_variable(CASENET_TMPFILESDIR systemd tmpfilesdir)
if(NOT CASENET_SYSTEMD_UNITDIR AND CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(CASENET_SYSTEMD_UNITDIR /lib/systemd/system)  # Debian 12's place for packaged units
elseif(NOT CASENET_SYSTEMD_UNITDIR)
  set(CASENET_SYSTEMD_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
if(NOT CASENET_SYSUSERSDIR)
  set(CASENET_SYSUSERSDIR ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d)
endif()
if(NOT CASENET_TMPFILESDIR)
  set(CASENET_TMPFILESDIR ${CMAKE_INSTALL_PREFIX}/lib/tmpfiles.d)
endif()
set(CASENET_SYSTEMD_UNITDIR ${CASENET_SYSTEMD_UNITDIR} CACHE PATH "systemd system unit directory")
set(CASENET_SYSUSERSDIR ${CASENET_SYSUSERSDIR} CACHE PATH "sysusers.d directory")
set(CASENET_TMPFILESDIR ${CASENET_TMPFILESDIR} CACHE PATH "tmpfiles.d directory")
# Operators' configuration: /etc/casenet whatever the prefix (the units and
# the example configuration name it).
set(CASENET_CONFDIR /etc/casenet CACHE PATH "casenetd's configuration directory")

# The units in deploy/ name /usr/local/bin/; the installed ones name this
# installation's bindir.
foreach(unit casenetd.service casenet-watch@.service casenet-console@.service)
  set(src ${PROJECT_SOURCE_DIR}/deploy/${unit})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(READ ${src} text)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" text "${text}")
  file(WRITE ${PROJECT_BINARY_DIR}/deploy/${unit} "${text}")
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/deploy/casenetd.service
  DESTINATION ${CASENET_SYSTEMD_UNITDIR} COMPONENT casenetd)
install(FILES ${PROJECT_BINARY_DIR}/deploy/casenet-watch@.service
  ${PROJECT_BINARY_DIR}/deploy/casenet-console@.service
  DESTINATION ${CASENET_SYSTEMD_UNITDIR} COMPONENT casenet)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/sysusers.d/casenetd.conf
  DESTINATION ${CASENET_SYSUSERSDIR} COMPONENT casenetd)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/tmpfiles.d/casenetd.conf
  DESTINATION ${CASENET_TMPFILESDIR} COMPONENT casenetd)

# The example configuration and policy: never over an operator's edited
# copy (a second `cmake --install` keeps it; the .deb marks them conffiles).
install(CODE "
  foreach(f casenetd.conf policy.ini)
    if(NOT EXISTS \"\$ENV{DESTDIR}${CASENET_CONFDIR}/\${f}\")
      file(INSTALL \"${PROJECT_SOURCE_DIR}/deploy/\${f}\"
        DESTINATION \"${CASENET_CONFDIR}\")
    else()
      message(STATUS \"Kept: \$ENV{DESTDIR}${CASENET_CONFDIR}/\${f} (exists)\")
    endif()
  endforeach()" COMPONENT casenetd)

# ---- man pages: docs/man/PAGE.scd, or PAGE.scd.in with a marker line
# "@casenetd --help-config=FORMAT@" replaced by that output (the option
# table of broker/config.c), into build/man/PAGE.scd (tests/packaging/man.py
# reads them there); then scdoc and gzip -9n as Debian ships them.
set(man_pages casenet.1 casenet-watch.1 casenetd.8 casenetd.conf.5)
set(man_scds)
foreach(page ${man_pages})
  set(scd ${PROJECT_BINARY_DIR}/man/${page}.scd)
  set(in ${PROJECT_SOURCE_DIR}/docs/man/${page}.scd)
  if(EXISTS ${in}.in)
    add_custom_command(OUTPUT ${scd}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND sh -c "awk -v d=\"$0\" '/^@casenetd --help-config=[a-z-]+@$/ { \
          f = substr($0, 25, length($0) - 25); if (system(d \" --help-config=\" f)) exit 1; \
          n++; next } { print } END { if (!n) exit 1 }' \"$1\" > \"$2.tmp\" && mv \"$2.tmp\" \"$2\""
        $<TARGET_FILE:casenetd> ${in}.in ${scd}
      DEPENDS ${in}.in casenetd VERBATIM)
  else()
    add_custom_command(OUTPUT ${scd}
      COMMAND ${CMAKE_COMMAND} -E copy ${in} ${scd}
      DEPENDS ${in} VERBATIM)
  endif()
  list(APPEND man_scds ${scd})
endforeach()
add_custom_target(casenet_man_scd ALL DEPENDS ${man_scds})

find_program(SCDOC scdoc)
if(SCDOC)
  set(outs)
  foreach(page ${man_pages})
    set(out ${PROJECT_BINARY_DIR}/man/${page}.gz)
    set(scd ${PROJECT_BINARY_DIR}/man/${page}.scd)
    # scdoc's errors fail the build (not hidden by the pipe into gzip)
    add_custom_command(OUTPUT ${out}
      COMMAND sh -c "\"$0\" < \"$1\" > \"$2.roff\" && gzip -9n < \"$2.roff\" > \"$2\" && rm \"$2.roff\""
        ${SCDOC} ${scd} ${out}
      DEPENDS ${scd} VERBATIM)
    list(APPEND outs ${out})
    string(REGEX MATCH "[0-9]$" section ${page})
    if(page MATCHES "^casenetd")
      set(comp casenetd)
    else()
      set(comp casenet)
    endif()
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT ${comp})
  endforeach()
  add_custom_target(casenet_man ALL DEPENDS ${outs})
  # the .scd files are casenet_man_scd's outputs: build them first, once, not
  # in two targets at the same time
  add_dependencies(casenet_man casenet_man_scd)
else()
  message(STATUS "scdoc not found: man pages not built (Debian: apt install scdoc)")
endif()
