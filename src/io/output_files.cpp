#include "spikevi/io/output_files.hpp"

#include <filesystem>

#include "spikevi/error.hpp"

namespace spikevi {

void check_output_path(const std::string& option, const std::string& path, bool overwrite) {
  namespace fs = std::filesystem;
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
}

std::string temporary_path_for(const std::string& path) { return path + ".tmp"; }

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

void rename_into_place(const std::string& temporary, const std::string& path) {
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    remove_quietly(temporary);
    throw InputError(path + ": cannot move the finished file into place (" + error.message() + ")");
  }
}

}  // namespace spikevi
