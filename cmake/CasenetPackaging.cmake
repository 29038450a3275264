# Installation rules and Debian packages. Included once, last, from the
# top-level CMakeLists.txt.
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release -DCASENET_TESTS=OFF
#   cmake --build build-deb -j && (cd build-deb && cpack -G DEB)
#
# gives casenet_*.deb (CLI, library), casenetd_*.deb (broker, units, user,
# /etc/casenet) and libcasenet-dev_*.deb (header, pkg-config, static
# library). Build with prefix /usr: the programs carry their installed paths.
include(${CMAKE_CURRENT_LIST_DIR}/CasenetInstall.cmake)

set(CASENET_DEB_MAINTAINER "casenet maintainers <maintainers@users.noreply.r-seed-e7b62cd5.example>"
  CACHE STRING "Maintainer field of the Debian packages")
set(CASENET_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages")
set(deb_version ${PROJECT_VERSION}-${CASENET_DEB_RELEASE})
set(debdir ${PROJECT_SOURCE_DIR}/deploy/debian)
set(debgen ${PROJECT_BINARY_DIR}/deploy/debian)

# copyright and changelog.Debian.gz in every package's doc directory
# (the time of configuring, or $SOURCE_DATE_EPOCH for a reproducible build)
string(TIMESTAMP deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${debdir}/changelog.in ${debgen}/changelog @ONLY)
execute_process(COMMAND gzip -9n -c ${debgen}/changelog OUTPUT_FILE ${debgen}/changelog.Debian.gz
  COMMAND_ERROR_IS_FATAL ANY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${debdir}/changelog.in)
foreach(comp casenet casenetd libcasenet-dev)
  install(FILES ${debdir}/copyright ${debgen}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${comp} COMPONENT ${comp})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME casenet)
set(CPACK_PACKAGE_VENDOR "casenet")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${CASENET_DEB_MAINTAINER})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL casenet casenetd libcasenet-dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CASENET_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${CASENET_DEB_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends from the libraries the programs link (dpkg-shlibdeps, in dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# a shlibs file for libcasenet.so.N, so programs built against it depend on casenet
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_STRIP_FILES ON)
# CPackDeb puts CPACK_PACKAGE_DESCRIPTION_SUMMARY before every description
# unless it is CPack's default; each description below starts with its own
# synopsis line instead.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")

set(CPACK_DEBIAN_CASENET_PACKAGE_NAME casenet)
set(CPACK_DEBIAN_CASENET_DESCRIPTION "signed, end-to-end encrypted case referrals (client)
casenet carries case referrals, takedown requests and status updates between
the members of a child-online-protection network through one broker,
casenetd. Every message is signed by its sender and encrypted end to end.

This package holds the casenet command-line tool (keys, directory, send,
inbox, receipts, audit, the unattended watch agent and the agency's web
console), the load generator casenet-bench, the shared library libcasenet
and the casenet-watch@ and casenet-console@ systemd units.")
# ldconfig runs from its trigger, not from maintainer scripts
set(CPACK_DEBIAN_CASENET_PACKAGE_CONTROL_EXTRA ${debdir}/casenet/triggers)

set(CPACK_DEBIAN_CASENETD_PACKAGE_NAME casenetd)
set(CPACK_DEBIAN_CASENETD_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_CASENETD_PACKAGE_SUGGESTS "casenet")
set(CPACK_DEBIAN_CASENETD_DESCRIPTION "signed, end-to-end encrypted case referrals (broker)
casenet carries case referrals, takedown requests and status updates between
the members of a child-online-protection network through one broker.

This package holds the broker casenetd, its systemd unit, the casenetd
system user (sysusers.d), its directories /var/lib/casenetd and
/etc/casenet (tmpfiles.d) and an example configuration. The broker stores
and forwards ciphertext only and keeps a signed audit log.")
set(CPACK_DEBIAN_CASENETD_PACKAGE_CONTROL_EXTRA
  ${debdir}/casenetd/conffiles ${debdir}/casenetd/postinst ${debdir}/casenetd/prerm
  ${debdir}/casenetd/postrm)

set(CPACK_DEBIAN_LIBCASENET-DEV_PACKAGE_NAME libcasenet-dev)
set(CPACK_DEBIAN_LIBCASENET-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_LIBCASENET-DEV_PACKAGE_DEPENDS "casenet (= ${deb_version}), libsodium-dev, \
libzmq3-dev, libprotobuf-c-dev, libjansson-dev")
set(CPACK_DEBIAN_LIBCASENET-DEV_DESCRIPTION "signed, end-to-end encrypted case referrals (development files)
casenet carries case referrals, takedown requests and status updates between
the members of a child-online-protection network through one broker.

This package holds what a program needs to build against libcasenet: the
header casenet.h, the pkg-config file casenet.pc and the static library.")

include(CPack)

# ---- tests of the installation and the packages (tests/packaging/)
if(CASENET_TESTS)
  add_test(NAME pkg.units COMMAND bash ${PROJECT_SOURCE_DIR}/tests/packaging/units.sh)
  # cmake --install writes the build tree's install_manifest.txt: one at a time
  set_tests_properties(pkg.units PROPERTIES TIMEOUT 120 RESOURCE_LOCK cmake_install
    ENVIRONMENT "CASENET_BINARY_DIR=${PROJECT_BINARY_DIR}")
  # the man pages (as built in build/man/) and --help name the same options
  add_test(NAME pkg.man COMMAND python3 ${PROJECT_SOURCE_DIR}/tests/packaging/man.py)
  set_tests_properties(pkg.man PROPERTIES TIMEOUT 120 ENVIRONMENT
    "CASENET_SOURCE_DIR=${PROJECT_SOURCE_DIR};CASENET_BINARY_DIR=${PROJECT_BINARY_DIR};CASENET=$<TARGET_FILE:casenet>;CASENETD=$<TARGET_FILE:casenetd>")
  # The .debs built and installed into a fresh Debian 12 root (root, network
  # to the Debian archive; CASENET_SKIP_DEB=1 skips). Its own build tree with
  # prefix /usr, so once per build type: not in the sanitizer or fuzz builds.
  if(CASENET_SANITIZER STREQUAL "none" AND NOT CASENET_FUZZ)
    add_test(NAME pkg.deb COMMAND bash ${PROJECT_SOURCE_DIR}/tests/packaging/deb.sh)
    set_tests_properties(pkg.deb PROPERTIES TIMEOUT 600 RESOURCE_LOCK casenet_pkg_deb
      SKIP_RETURN_CODE 77
      ENVIRONMENT "CASENET_SOURCE_DIR=${PROJECT_SOURCE_DIR};CASENET_BINARY_DIR=${PROJECT_BINARY_DIR}")
  endif()
endif()
