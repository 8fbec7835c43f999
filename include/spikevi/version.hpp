// The build's identity, recorded in every output file. Defined in a source file generated at
// build time (cmake/version.cpp.in), so that a new git revision recompiles one file only.
#pragma once

namespace spikevi {

// The project version, e.g. "0.1.0".
const char* version();

// `git rev-parse --short HEAD` of the source tree when the library was built; "unknown" when
// the sources were not a git checkout (a tarball) or git was missing.
const char* git_revision();

}  // namespace spikevi
