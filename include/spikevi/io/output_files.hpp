#pragma once
// Output files are written whole or not at all: to a temporary beside the final name, then
// renamed into place (rename(2) is atomic on one file system), so that a failure never leaves a
// half-written file under the final name, nor destroys an existing one.
#include <string>

namespace spikevi {

// Refuses (ConfigError naming `option`) an output path whose folder is missing, that names a
// folder, or that exists without `overwrite`; then (OutputError) one whose folder this process
// cannot create a file in, found by creating and removing a one-byte probe file there, so that
// an unwritable location (a read-only file system, /proc, a full disk) stops a command before
// its work, not after.
void check_output_path(const std::string& option, const std::string& path, bool overwrite);

// Refuses (ConfigError naming both options) an output `path`, or its temporary, that is the
// file `input` (the same inode when both exist, else the same canonical path): writing it
// would destroy the input.
void check_output_is_not_input(const std::string& option, const std::string& path,
                               const std::string& input_option, const std::string& input);

// Writes through `write(temporary_path)` and renames into place. A failure of the write or of
// the rename leaves neither the temporary nor a new file at `path`; the write's InputError
// (the HDF5 layer's failure) is rethrown as the OutputError it is.
template <class Write>
void write_atomically(const std::string& path, Write&& write);
void rename_into_place(const std::string& temporary, const std::string& path);
std::string temporary_path_for(const std::string& path);  // path + ".tmp"
void remove_quietly(const std::string& path);
// In a catch block: rethrows an InputError as an OutputError, anything else as it is.
[[noreturn]] void rethrow_as_output_failure();

template <class Write>
void write_atomically(const std::string& path, Write&& write) {
  const std::string temporary = temporary_path_for(path);
  try {
    write(temporary);
  } catch (...) {
    remove_quietly(temporary);
    rethrow_as_output_failure();
  }
  rename_into_place(temporary, path);
}

}  // namespace spikevi
