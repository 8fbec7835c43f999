# cmake -DSOURCE_DIR=... -DVERSION=... -DINPUT=version.cpp.in -DOUTPUT=version.cpp -P this file
#
# Run on every build (a cheap `git rev-parse`), so that the revision follows HEAD without a
# re-configure; configure_file rewrites OUTPUT only when its text changes, so an unchanged HEAD
# recompiles nothing.
set(SPIKEVI_VERSION "${VERSION}")
set(SPIKEVI_GIT_REVISION "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --show-toplevel
                  WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status
                  OUTPUT_VARIABLE top OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  # Only a checkout of these sources counts: a tarball unpacked inside some other repository
  # must not record that repository's revision.
  if(status EQUAL 0)
    file(REAL_PATH "${top}" top)
    file(REAL_PATH "${SOURCE_DIR}" source)
    if(top STREQUAL source)
      execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --short HEAD
                      WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status
                      OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(status EQUAL 0 AND revision)
        set(SPIKEVI_GIT_REVISION "${revision}")
      endif()
    endif()
  endif()
endif()
configure_file("${INPUT}" "${OUTPUT}" @ONLY)
