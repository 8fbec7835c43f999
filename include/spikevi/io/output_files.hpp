#pragma once
// Output files are written whole or not at all: to a temporary beside the final name, then
// renamed into place (rename(2) is atomic on one file system), so that a failure never leaves a
// half-written file under the final name, nor destroys an existing one.
#include <string>

namespace spikevi {

// Refuses (ConfigError naming `option`) an output path whose folder is missing, that names a
// folder, or that exists without `overwrite`.
void check_output_path(const std::string& option, const std::string& path, bool overwrite);

// Writes through `write(temporary_path)` and renames into place.
template <class Write>
void write_atomically(const std::string& path, Write&& write);
void rename_into_place(const std::string& temporary, const std::string& path);
std::string temporary_path_for(const std::string& path);  // path + ".tmp"
void remove_quietly(const std::string& path);

template <class Write>
void write_atomically(const std::string& path, Write&& write) {
  const std::string temporary = temporary_path_for(path);
  try {
    write(temporary);
  } catch (...) {
    remove_quietly(temporary);
    throw;
  }
  rename_into_place(temporary, path);
}

}  // namespace spikevi
