# ctest packaging_consumer: cmake -DBUILD_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=...
#   -DCXX_COMPILER=... -DGENERATOR=... -P install_and_consume.cmake
# Installs the build into WORK_DIR/prefix, checks what the install holds, then configures,
# builds and runs CONSUMER_DIR against it with nothing but CMAKE_PREFIX_PATH.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "FAIL: ${what} (exit ${status}):\n${out}")
  endif()
  message("ok: ${what}")
  set(output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# lib, lib64 or lib/<multiarch>, as GNUInstallDirs chose for the build.
file(GLOB_RECURSE config ${prefix}/spikeviConfig.cmake)
file(GLOB_RECURSE library ${prefix}/libspikevi_core.*)
foreach(expected ${prefix}/bin/spikevi ${prefix}/include/spikevi/math/quadrature.hpp
                 ${prefix}/include/spikevi/error.hpp "${config}" "${library}"
                 ${prefix}/share/spikevi/spikevi_report.py)
  if(NOT EXISTS "${expected}")
    message(FATAL_ERROR "FAIL: the install lacks ${expected}")
  endif()
endforeach()
get_filename_component(config_dir ${config} DIRECTORY)
if(NOT EXISTS ${config_dir}/spikeviConfigVersion.cmake)
  message(FATAL_ERROR "FAIL: no spikeviConfigVersion.cmake beside ${config}")
endif()
message("ok: the install holds bin/spikevi, the library, the headers and the package files")

# What the build's own options must not impose on users of the package.
file(GLOB targets ${config_dir}/spikeviTargets*.cmake)
foreach(file ${targets})
  file(READ ${file} text)
  foreach(forbidden "-march=native" "-fsanitize" "-Werror" "${BUILD_DIR}")
    string(FIND "${text}" "${forbidden}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "FAIL: ${file} mentions '${forbidden}'")
    endif()
  endforeach()
endforeach()
message("ok: the exported target carries no -march=native, sanitizer, -Werror or build paths")

run("configure the consumer project"
    ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
run("build the consumer project" ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run("run the consumer" ${WORK_DIR}/consumer/consumer)
message("${output}")
file(REMOVE_RECURSE ${WORK_DIR})
