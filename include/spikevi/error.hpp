#pragma once
// Typed errors. The CLI turns each into one line and a non-zero exit status:
//   InputError     a data or checkpoint file breaks its contract (names file, dataset, value)
//   OutputError    an output cannot be written: an unwritable folder, a full disk (names the file)
//   ConfigError    an option or option combination makes no sense (names the option)
//   NumericalError a computation lost positive-definiteness or finiteness (names where)
#include <stdexcept>
#include <string>

namespace spikevi {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InputError : public Error {
 public:
  using Error::Error;
};

class OutputError : public Error {
 public:
  using Error::Error;
};

class ConfigError : public Error {
 public:
  using Error::Error;
};

class NumericalError : public Error {
 public:
  using Error::Error;
};

// Thrown on the ranks that did not see an error another rank reported (and printed): they stop
// with the same exit status, silently, instead of waiting in a collective.
class PeerFailure : public Error {
 public:
  explicit PeerFailure(int status)
      : Error("stopped because another rank failed"), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

}  // namespace spikevi
