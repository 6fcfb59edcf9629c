# `cmake --install`: the ember CLI, libember.so, the public headers, a CMake package config
# (find_package(ember) → ember::ember) and a pkg-config file (pkg-config --cflags --libs ember).
include(CMakePackageConfigHelpers)

set_target_properties(ember_shared PROPERTIES EXPORT_NAME ember)
# The C++ API's headers use C++20 (std::span); the C API (ember.h) needs only C99.
target_compile_features(ember_shared INTERFACE cxx_std_20)

install(TARGETS ember RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS ember_shared EXPORT emberTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The API's headers (tensor_view.h is the internal TensorView, public in the tree for the tests'
# and tools' sake, but not part of the library's interface).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ember DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp" PATTERN "tensor_view.h" EXCLUDE)

set(EMBER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ember)
install(EXPORT emberTargets NAMESPACE ember:: DESTINATION ${EMBER_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/emberConfig.cmake.in
  ${PROJECT_BINARY_DIR}/emberConfig.cmake INSTALL_DESTINATION ${EMBER_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/emberConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/emberConfig.cmake ${PROJECT_BINARY_DIR}/emberConfigVersion.cmake
  DESTINATION ${EMBER_CMAKE_DIR})

# pkg-config paths relative to the .pc file, so `cmake --install --prefix` anywhere (and moving the
# tree) works; libdir may be lib or lib/<multiarch>.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(EMBER_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")  # absolute directories: the tree cannot move
  set(EMBER_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH EMBER_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
  set(EMBER_PC_PREFIX "\${pcfiledir}/${EMBER_PC_TO_PREFIX}")
  set(EMBER_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ember.pc.in ${PROJECT_BINARY_DIR}/ember.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ember.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
