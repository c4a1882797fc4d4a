# moatless_cc_library / moatless_cc_test / moatless_cc_binary: the only way modules are declared.
#
# The layer rule of DESIGN.md is enforced here twice:
#  1. at configure time, a module may list in DEPS only modules of a strictly lower layer;
#  2. at compile time, a module sees only its own headers and those of the modules it lists
#     (each module's headers are exposed through its own include root, a folder holding a single
#     link `<module> -> src/<module>`), so `#include "policy/x.h"` from a module that does not
#     depend on policy fails to build.

set(MOATLESS_LAYERS
  "core"
  "observe"
  "http;store"
  "policy;sandbox"
  "identity;secrets"
  "runtime"
  "services;gateway"
  "manifest;analysis"
  "app;cli")

function(_moatless_layer_of module out)
  set(index 1)
  foreach(layer IN LISTS MOATLESS_LAYERS)
    string(REPLACE ";" "|" pattern "${layer}")
    if(module MATCHES "^(${pattern})(_.*)?$")
      set(${out} ${index} PARENT_SCOPE)
      return()
    endif()
    math(EXPR index "${index} + 1")
  endforeach()
  message(FATAL_ERROR "module '${module}' is in no layer of MOATLESS_LAYERS (cmake/MoatlessTargets.cmake)")
endfunction()

# MOATLESS_FUZZ (clang only): every module is instrumented for libFuzzer and ASan/UBSan so that the
# fuzz targets in tests/fuzz exercise instrumented code (see tests/fuzz/CMakeLists.txt).
# -fno-sanitize=function: clang 14 fails on coroutines with it ("Cannot represent a difference
# across sections").
option(MOATLESS_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
set(MOATLESS_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize=function
  -fno-sanitize-recover=all -fno-omit-frame-pointer)

set(MOATLESS_WARNINGS -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wimplicit-fallthrough
  # designated initializers leave the rest defaulted on purpose
  -Wno-missing-field-initializers)

function(_moatless_common target)
  target_compile_options(${target} PRIVATE ${MOATLESS_WARNINGS}
    $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>)
  if(MOATLESS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(MOATLESS_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link ${MOATLESS_FUZZ_FLAGS})
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(MOATLESS_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${MOATLESS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${MOATLESS_SANITIZE})
  endif()
endfunction()

# moatless_cc_library(NAME <module>[_<part>] SRCS ... [DEPS <moatless modules>...] [LIBS <third-party>...])
# The module folder is the first segment of NAME: store_sqlite lives in src/store/ (its files
# under src/store/sqlite/) and is part of the store layer.
function(moatless_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LIBS" ${ARGN})
  _moatless_layer_of(${ARG_NAME} my_layer)
  string(REGEX REPLACE "_.*$" "" my_module "${ARG_NAME}")
  foreach(dep IN LISTS ARG_DEPS)
    _moatless_layer_of(${dep} dep_layer)
    string(REGEX REPLACE "_.*$" "" dep_module "${dep}")
    if(NOT dep_module STREQUAL my_module AND NOT dep_layer LESS my_layer)
      message(FATAL_ERROR "layer rule: '${ARG_NAME}' (layer ${my_layer}) may not depend on '${dep}' (layer ${dep_layer}); see DESIGN.md")
    endif()
  endforeach()

  set(root "${CMAKE_BINARY_DIR}/include_roots/${my_module}")
  if(NOT EXISTS "${root}/${my_module}")
    file(MAKE_DIRECTORY "${root}")
    file(CREATE_LINK "${CMAKE_SOURCE_DIR}/src/${my_module}" "${root}/${my_module}" SYMBOLIC)
  endif()

  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(moatless::${ARG_NAME} ALIAS ${ARG_NAME})
  target_include_directories(${ARG_NAME} PUBLIC "${root}")
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS} ${ARG_LIBS})
  _moatless_common(${ARG_NAME})
endfunction()

# moatless_cc_test(NAME <name> SRCS ... DEPS ... [LIBS ...] [LABELS ...])
# A GoogleTest executable; every TEST becomes one ctest test, labelled "unit" unless LABELS says.
function(moatless_cc_test)
  if(NOT MOATLESS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  _moatless_common(${ARG_NAME})
  target_compile_definitions(${ARG_NAME} PRIVATE
    MOATLESS_TESTDATA_DIR="${MOATLESS_TESTDATA_DIR}")
  # A GTEST_SKIP()ped test (e.g. official test data absent) shows as skipped in ctest's summary,
  # never as passed.
  gtest_discover_tests(${ARG_NAME} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()

# moatless_cc_binary(NAME <name> SRCS ... DEPS ... [LIBS ...] [OUTPUT_NAME name])
function(moatless_cc_binary)
  cmake_parse_arguments(ARG "" "NAME;OUTPUT_NAME" "SRCS;DEPS;LIBS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} ${ARG_LIBS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  _moatless_common(${ARG_NAME})
endfunction()
