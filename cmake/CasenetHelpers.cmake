# Helpers shared by every CMakeLists.txt of the project.

# casenet_unit_test(NAME SOURCES... [KIND it] [LIBS ...])
# One cmocka executable per module, registered with ctest under "unit.NAME"
# (a module alone), or "it.NAME" with KIND it (it starts a real casenetd).
function(casenet_unit_test name)
  cmake_parse_arguments(T "" "KIND" "LIBS" ${ARGN})
  if(NOT T_KIND)
    set(T_KIND unit)
  endif()
  add_executable(test_${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(test_${name} PRIVATE casenet_testlib ${T_LIBS} PkgConfig::CMOCKA casenet_flags)
  add_test(NAME ${T_KIND}.${name} COMMAND test_${name})
  set_tests_properties(${T_KIND}.${name} PROPERTIES
    ENVIRONMENT "CASENET_SOURCE_DIR=${PROJECT_SOURCE_DIR};CASENET_BINARY_DIR=${PROJECT_BINARY_DIR};CASENET_TESTVECTORS=${CASENET_TESTVECTORS}"
    TIMEOUT 300)
endfunction()

# casenet_script_test(NAME SCRIPT)
# A shell test that drives the real binaries (casenet, casenetd).
function(casenet_script_test name script)
  add_test(NAME ${name} COMMAND bash ${script})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "CASENET_SOURCE_DIR=${PROJECT_SOURCE_DIR};CASENET_BINARY_DIR=${PROJECT_BINARY_DIR};CASENET=$<TARGET_FILE:casenet>"
    TIMEOUT 600)
endfunction()

# casenet_fuzzer(NAME SOURCES... LIBS ...)
# A libFuzzer harness over the production code; built only with CASENET_FUZZ.
function(casenet_fuzzer name)
  cmake_parse_arguments(F "" "" "LIBS" ${ARGN})
  add_executable(fuzz_${name} ${F_UNPARSED_ARGUMENTS})
  target_link_libraries(fuzz_${name} PRIVATE ${F_LIBS} casenet_flags)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
endfunction()
