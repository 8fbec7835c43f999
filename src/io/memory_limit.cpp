#include "spikevi/io/memory_limit.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

namespace spikevi {
namespace {

// MemAvailable of /proc/meminfo in bytes, +infinity when it cannot be read.
double system_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    double kibibytes = 0.0;
    if (fields >> key >> kibibytes && key == "MemAvailable:") return kibibytes * 1024.0;
  }
  return std::numeric_limits<double>::infinity();
}

double resource_limit_bytes(int resource) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return std::numeric_limits<double>::infinity();
  return static_cast<double>(limit.rlim_cur);
}

}  // namespace

MemoryLimit available_memory() {
  MemoryLimit limit{system_available_bytes(), "available (MemAvailable in /proc/meminfo)"};
  const double address_space = resource_limit_bytes(RLIMIT_AS);
  if (address_space < limit.bytes) limit = {address_space, "this process may map (ulimit -v)"};
  const double data = resource_limit_bytes(RLIMIT_DATA);
  if (data < limit.bytes) limit = {data, "this process may allocate (ulimit -d)"};
  return limit;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 5) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

}  // namespace spikevi
