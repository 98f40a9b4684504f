# Fails when a Catch test name would not survive catch_discover_tests: ctest
# splits a name at ';' (both halves then match nothing and pass without
# running); Catch reads a leading '[' as a tag and a leading "--" as an option.
# Usage: cmake -DBIN=test_binary -P check_test_names.cmake
# Catch v2 exits with the number of tests listed, so only an empty list fails.
execute_process(COMMAND "${BIN}" --list-test-names-only OUTPUT_VARIABLE names)
if(NOT names)
  message(FATAL_ERROR "${BIN} --list-test-names-only listed nothing")
endif()
string(REPLACE ";" "<SEMICOLON>" names "${names}")
string(REPLACE "\n" ";" lines "${names}")
set(bad "")
foreach(line IN LISTS lines)
  if(line MATCHES "<SEMICOLON>" OR line MATCHES "^\\[" OR line MATCHES "^--")
    string(REPLACE "<SEMICOLON>" "\\;" line "${line}")
    string(APPEND bad "  ${line}\n")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "test names ctest cannot run (no ';', no leading '[' or '--'):\n${bad}")
endif()
