#include "spikevi/parallel/threads.hpp"

#include <cstdlib>

#include "spikevi/error.hpp"

namespace spikevi {

int resolve_thread_count(int requested) {
  if (requested < 0)
    throw ConfigError("--threads must be >= 0 (got " + std::to_string(requested) + ")");
  if (requested > 0) return requested;
  const char* environment = std::getenv("OMP_NUM_THREADS");
  if (!environment || !*environment) return 1;
  char* end = nullptr;
  const long value = std::strtol(environment, &end, 10);
  // OpenMP allows a list ("4,2") for nested levels: the first entry is this level's.
  if (end == environment || (*end != '\0' && *end != ',') || value < 1 || value > 4096)
    throw ConfigError(std::string("OMP_NUM_THREADS must be a positive integer (got '") +
                      environment + "')");
  return static_cast<int>(value);
}

bool threads_available() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace spikevi
