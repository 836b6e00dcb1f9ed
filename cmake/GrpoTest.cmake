# Test helpers. Every test is a C program built on tests/test.h; it prints
# "N passed, N failed" and exits non-zero on any failure.
#
#   grpo_add_test(NAME SOURCES a.c ... LIBS grpo_core ... LABELS unit [TIMEOUT s] [ARGS ...])
#   grpo_add_mpi_test(NAME NP 2 SOURCES ... LIBS ... [LABELS ...])
#   grpo_add_fuzz(NAME SOURCES ... LIBS ... CORPUS dir)
#
# Tests run from the source root so they can read tests/fixtures and ../shared.
set(GRPO_MPI_TEST_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")

function(grpo_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "GRPO_BUILD_DIR=${PROJECT_BINARY_DIR};GRPO_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

function(grpo_add_mpi_test name)
  cmake_parse_arguments(T "" "NP;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_NP)
    set(T_NP 2)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} MPI::MPI_C)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP} ${MPIEXEC_PREFLAGS}
            $<TARGET_FILE:${name}> ${T_ARGS}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "mpi;${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${GRPO_MPI_TEST_ENV};GRPO_BUILD_DIR=${PROJECT_BINARY_DIR};GRPO_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# A fuzz target defines LLVMFuzzerTestOneInput. With GRPO_FUZZ=ON (clang) it
# links libFuzzer; otherwise it links tests/fuzz_replay.c and a unit test
# replays its seed corpus, so every CI run exercises the target.
function(grpo_add_fuzz name)
  cmake_parse_arguments(T "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  if(GRPO_FUZZ)
    add_executable(${name} ${T_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz_replay.c)
    add_test(NAME ${name}_replay COMMAND ${name} ${PROJECT_SOURCE_DIR}/${T_CORPUS}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(${name}_replay PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
  endif()
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
endfunction()
