# Every dependency is a Debian package (tests/run.sh installs them). Each one
# becomes an imported target named grpo::<name> so modules link what they use.
find_package(PkgConfig REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(MPI REQUIRED COMPONENTS C)
set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 REQUIRED COMPONENTS C)

pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)

add_library(grpo::yaml ALIAS PkgConfig::YAML)
add_library(grpo::cjson ALIAS PkgConfig::CJSON)
add_library(grpo::pcre2 ALIAS PkgConfig::PCRE2)
add_library(grpo::utf8proc ALIAS PkgConfig::UTF8PROC)
add_library(grpo::openblas ALIAS PkgConfig::OPENBLAS)

add_library(grpo_hdf5 INTERFACE)
target_include_directories(grpo_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(grpo_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(grpo_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
add_library(grpo::hdf5 ALIAS grpo_hdf5)
