# A test about the tests: ctest learns the test cases' names from doctest and keeps them in CMake
# lists, where ';' separates items, so a name with ';' would become two tests that match nothing and
# pass without running anything. This fails naming every such TEST_CASE.
file(GLOB_RECURSE sources "${TESTS_DIR}/*.cpp")
set(bad "")
foreach(source ${sources})
  file(STRINGS "${source}" lines REGEX "TEST_CASE\\(" ENCODING UTF-8)
  foreach(line IN LISTS lines)
    # file(STRINGS) keeps each line whole (it escapes the ';'), so the name is the quoted text.
    if(line MATCHES "TEST_CASE\\(\"[^\"]*;")
      list(APPEND bad "${source}: ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "test case names must not contain ';' (ctest would split them):\n  ${bad}")
endif()
