# Configure, build and run the consumer project against the package in PACKAGE_DIR (a build tree).
file(REMOVE_RECURSE "${BUILD}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE}" -B "${BUILD}" -Dqadataswap_DIR=${PACKAGE_DIR}
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD}" COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${BUILD}/consumer_c" COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${BUILD}/consumer_cpp" COMMAND_ERROR_IS_FATAL ANY)
# The pkg-config file: compile the C program with nothing but its flags.
set(ENV{PKG_CONFIG_PATH} "${PACKAGE_DIR}")
find_program(PKG_CONFIG pkg-config)
find_program(CC NAMES cc gcc)
if(PKG_CONFIG AND CC)
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs qadataswap
                  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  execute_process(COMMAND "${CC}" -std=c11 "${SOURCE}/main.c" ${flags} -o "${BUILD}/consumer_pc"
                  COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND "${BUILD}/consumer_pc" COMMAND_ERROR_IS_FATAL ANY)
else()
  message(STATUS "pkg-config not installed: skipped the pkg-config build")
endif()
