# Runs a test binary with the CPU kernels capped at a lower instruction-set level (ctest sets
# HOTLAP_CPU_ISA in the environment; see tests/CMakeLists.txt), or says why it cannot: on a CPU
# without that level, `hotlap info` fails with its one-line error, and this prints it after
# "CPU level skipped:", which ctest reports as a skip (SKIP_REGULAR_EXPRESSION), not a failure.
#   cmake -DHOTLAP=<the hotlap binary> -DTEST_BINARY=<a doctest binary> [-DTEST_ARGS=<filters>]
#         -P run_at_cpu_isa.cmake
execute_process(COMMAND "${HOTLAP}" info RESULT_VARIABLE probe OUTPUT_QUIET ERROR_VARIABLE why)
if(NOT probe EQUAL 0)
  if(why MATCHES "which this CPU lacks")
    string(STRIP "${why}" why)
    message("CPU level skipped: ${why}")
    return()
  endif()
  message(FATAL_ERROR "`hotlap info` failed with HOTLAP_CPU_ISA=$ENV{HOTLAP_CPU_ISA}: ${why}")
endif()
execute_process(COMMAND "${TEST_BINARY}" ${TEST_ARGS} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${TEST_BINARY} failed with HOTLAP_CPU_ISA=$ENV{HOTLAP_CPU_ISA} (exit ${status})")
endif()
