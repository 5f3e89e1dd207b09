# Install rules and the Debian package: cmake --build BUILD --target package
# writes BUILD/mqtt-server_<version>_<arch>.deb (docs/operations.md#the-debian-package).
#
# The paths are those of a Debian package: binaries under the prefix (/usr in
# the package), the config, the unit and the docs at the absolute places
# Debian expects. A plain `cmake --install` writes the config and the unit to
# those absolute places too; the package is the supported way to install.
include(GNUInstallDirs)

set(MQTT_PKG_DIR ${CMAKE_CURRENT_SOURCE_DIR}/packaging)

install(TARGETS mqtt-server mqtt-server-ctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# A conffile (listed in packaging/deb/conffiles): upgrades keep the operator's edits.
install(FILES ${MQTT_PKG_DIR}/mqtt-server.toml DESTINATION /etc/mqtt-server)
install(FILES ${MQTT_PKG_DIR}/mqtt-server.service DESTINATION /lib/systemd/system)

# Man pages, with the version filled in and gzipped as Debian policy wants
# (-n: no name or time stamp inside, so the same source gives the same bytes).
find_program(GZIP_EXECUTABLE gzip REQUIRED)
set(man_gz)
foreach(page mqtt-server.1 mqtt-server-ctl.1)
  configure_file(${MQTT_PKG_DIR}/${page} ${CMAKE_CURRENT_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
    COMMAND ${GZIP_EXECUTABLE} -9nf -k ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
    DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
    COMMENT "gzip man page ${page}")
  list(APPEND man_gz ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
endforeach()
add_custom_target(man-pages ALL DEPENDS ${man_gz})
install(FILES ${man_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

install(FILES ${MQTT_PKG_DIR}/copyright ${CMAKE_CURRENT_SOURCE_DIR}/README.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/config.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/operations.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/security.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mqtt-server)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "mqtt-server maintainers <maintainers@users.noreply.r-seed-f51b1d8d.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MQTT broker and device gateway with a gRPC API")
# The long description; CPack puts the summary above it and indents it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "mqtt-server is an MQTT 3.1, 3.1.1 and 5.0 broker over TCP and TLS that keeps
the latest payload of every device and topic (embedded RocksDB or Cassandra)
and serves back-end users over gRPC (mqtt-server-ctl).

The package runs it as the systemd service mqtt-server, listening on plain
TCP 127.0.0.1:1883 only until TLS is configured in
/etc/mqtt-server/mqtt-server.toml.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # mqtt-server_<version>_<arch>.deb
# Depends from the binaries' shared libraries (dpkg-shlibdeps, in dpkg-dev),
# plus adduser for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${MQTT_PKG_DIR}/deb/conffiles ${MQTT_PKG_DIR}/deb/postinst ${MQTT_PKG_DIR}/deb/prerm
    ${MQTT_PKG_DIR}/deb/postrm)
# 0755 for the scripts, 0644 for conffiles, whatever the checkout's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The absolute destinations (/etc, /lib) go into the package's tree, never
# into this machine's /etc while packaging.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
include(CPack)
