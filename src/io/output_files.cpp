#include "spikevi/io/output_files.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

namespace fs = std::filesystem;

// Creates, writes one byte to and removes a uniquely named file in `folder`; "" on success,
// else the system's reason.
std::string probe_failure(const fs::path& folder, const std::string& name) {
  std::string pattern = (folder / ("." + name + ".probe-XXXXXX")).string();
  std::vector<char> probe(pattern.begin(), pattern.end());
  probe.push_back('\0');
  const int descriptor = mkstemp(probe.data());
  if (descriptor < 0) return std::strerror(errno);
  const char byte = 0;
  const bool wrote = ::write(descriptor, &byte, 1) == 1 && ::fsync(descriptor) == 0;
  const int error = errno;
  ::close(descriptor);
  ::unlink(probe.data());
  return wrote ? "" : std::strerror(error);
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code error;
  if (fs::exists(a, error) && fs::exists(b, error)) {
    const bool same = fs::equivalent(a, b, error);
    if (!error) return same;
  }
  const fs::path canonical_a = fs::weakly_canonical(a, error);
  if (error) return false;
  const fs::path canonical_b = fs::weakly_canonical(b, error);
  return !error && canonical_a == canonical_b;
}

}  // namespace

void check_output_path(const std::string& option, const std::string& path, bool overwrite) {
  if (path.empty()) throw ConfigError(option + " is required");
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::exists(folder))
    throw ConfigError(option + " " + path + ": the folder " + folder.string() + " does not exist");
  if (!fs::is_directory(folder))
    throw ConfigError(option + " " + path + ": " + folder.string() + " is not a folder");
  if (fs::is_directory(target))
    throw ConfigError(option + " " + path + " is a folder; name a file to write");
  if (fs::exists(target) && !overwrite)
    throw ConfigError(option + " " + path + " already exists (pass --overwrite to replace it)");
  const std::string failure = probe_failure(folder, target.filename().string());
  if (!failure.empty())
    throw OutputError(option + " " + path + ": cannot write a file in " + folder.string() + " (" +
                      failure + ")");
}

void check_output_is_not_input(const std::string& option, const std::string& path,
                               const std::string& input_option, const std::string& input) {
  for (const std::string& written : {path, temporary_path_for(path)})
    if (same_file(written, input))
      throw ConfigError(option + " " + path + " is the " + input_option + " file " + input +
                        ": writing it would destroy the input; name another output");
}

std::string temporary_path_for(const std::string& path) { return path + ".tmp"; }

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

void rethrow_as_output_failure() {
  try {
    throw;
  } catch (const InputError& error) {  // the HDF5 layer names the file and what failed
    throw OutputError(error.what());
  }
}

void rename_into_place(const std::string& temporary, const std::string& path) {
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    remove_quietly(temporary);
    throw OutputError(path + ": cannot move the finished file into place (" + error.message() +
                      ")");
  }
}

}  // namespace spikevi
