#pragma once
// How much memory this process may still allocate, for refusing a read up front (with the
// figure) rather than failing in std::bad_alloc half-way.
#include <string>

namespace spikevi {

struct MemoryLimit {
  double bytes = 0.0;  // +infinity when nothing is known
  std::string source;  // e.g. "available (MemAvailable in /proc/meminfo)"
};

// The smallest of the memory the system reports available (MemAvailable of /proc/meminfo)
// and this process's address-space and data-segment limits (ulimit -v, ulimit -d).
MemoryLimit available_memory();

// A byte count for messages: "1.5 GiB", "820 MiB", "12 KiB".
std::string format_bytes(double bytes);

}  // namespace spikevi
