#pragma once
// A small RAII wrapper over one open HDF5 file. src/io/hdf5_file.cpp is the only file of spikevi
// that includes hdf5.h; everything else reads and writes HDF5 through this class.
//
// Object names are absolute ("/counts", "/truth/C") or relative to the root. Every failure
// throws InputError whose message starts with the file and the object, e.g.
// "data.h5: /counts: ...". The HDF5 library's own error printing is switched off for the
// whole process the first time a file is opened; its innermost message is quoted in ours.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "spikevi/error.hpp"

namespace spikevi {

// Thrown by the integer reads for a stored unsigned value above the largest std::int64_t
// (which HDF5's conversion would silently clamp); the message names the value as stored.
class IntegerOutOfRange : public InputError {
 public:
  using InputError::InputError;
};

// How a file is opened.
struct Hdf5Options {
  // false: serial I/O (the sec2 driver) by this process alone.
  // true: parallel HDF5 over MPI-IO (H5Pset_fapl_mpio on MPI_COMM_WORLD; MPI must be
  // initialised). Opening, creating and closing the file are then collective: every rank makes
  // the call with identical arguments, and no rank may leave the file's scope alone (the
  // destructor closes). Creating datasets and attributes is collective too (write_* then write
  // the same data from every rank); every other read is independent, and read_*_collective is
  // the one collective data read.
  bool mpi_io = false;
};

class Hdf5File {
 public:
  using Dims = std::vector<std::size_t>;

  // The class of a dataset's element type, independent of its width and byte order.
  enum class ElementClass { kInteger, kFloat, kString, kOther };

  // The type a dataset is stored as (or an array is held in memory as); HDF5 converts.
  enum class ElementType { kUint8, kUint16, kInt32, kInt64, kFloat32, kFloat64 };

  // Opens an existing file read-only. Throws "FILE: no such file" for a missing path and
  // "FILE: not a readable HDF5 file (...)" for anything HDF5 cannot open (text, truncated).
  // Whether `path` is a readable file with the HDF5 format signature (H5Fis_hdf5).
  static bool has_hdf5_signature(const std::string& path);
  static Hdf5File open_read(const std::string& path, const Hdf5Options& options = {});
  // Opens an existing file for reading and writing.
  static Hdf5File open_read_write(const std::string& path, const Hdf5Options& options = {});
  // Creates a file, truncating any existing one. Without mpi_io the file is built in memory
  // and written to `path` by close() (or, errors unseen, by the destructor): a full disk is
  // then an error of close(), and leaves the HDF5 library sound.
  static Hdf5File create(const std::string& path, const Hdf5Options& options = {});

  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&& other) noexcept;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();  // closes quietly; call close() to see errors of the final flush

  // Flushes and closes the file; afterwards every other call throws. Idempotent.
  void close();
  const std::string& path() const { return path_; }

  // True when `object` (a group, dataset or named type) exists, intermediate groups
  // included; never throws for a missing one. "/" always exists.
  bool exists(const std::string& object) const;
  // Names (not paths) of the members of a group, in ascending name order.
  std::vector<std::string> list_children(const std::string& group) const;
  // Deletes the link `object` (space in the file is not reclaimed).
  void remove(const std::string& object);
  // Creates a group (and any missing parents); nothing happens if it exists.
  void create_group(const std::string& group);

  // Extent of a dataset, outermost first; empty for a scalar dataset.
  Dims shape(const std::string& dataset) const;
  ElementClass element_class(const std::string& dataset) const;

  // The whole dataset, row-major, converted from any integer or floating-point type.
  std::vector<double> read_doubles(const std::string& dataset) const;
  // The rows [first, first + count) of the first dimension, row-major.
  std::vector<double> read_doubles(const std::string& dataset, std::size_t first,
                                   std::size_t count) const;
  // As read_doubles, but the dataset must have an integer type. An unsigned value above the
  // largest std::int64_t throws IntegerOutOfRange naming it.
  std::vector<std::int64_t> read_integers(const std::string& dataset) const;
  std::vector<std::int64_t> read_integers(const std::string& dataset, std::size_t first,
                                          std::size_t count) const;
  // The values of a dataset of integers or of an enumerated type over an integer base (h5py
  // stores bool as the enum FALSE = 0, TRUE = 1 over int8), as the enum's integer values.
  std::vector<std::int64_t> read_integers_or_enum(const std::string& dataset) const;
  // The text of a scalar or 1-D dataset of strings (fixed- or variable-length, as h5py and pynwb
  // write text), one string per element in row order; a scalar dataset gives one string.
  std::vector<std::string> read_strings(const std::string& dataset) const;

  // As read_integers / read_doubles of rows, in one collective MPI-IO read (H5FD_MPIO_COLLECTIVE)
  // when the file was opened with mpi_io: every rank calls it, in the same order relative to
  // the other collective calls, each with its own rows; count may be 0. A rank whose rows lie
  // outside the extent still takes part (selecting nothing) and throws afterwards, so no rank
  // is left waiting; what is wrong with the dataset itself (missing, not numeric) is the same on
  // every rank and throws before the read. The data are read in their stored type, so that HDF5
  // has no type conversion to make (which would make it fall back to independent I/O), and
  // converted in memory. Without mpi_io this is a serial read of the same rows.
  std::vector<std::int64_t> read_integers_collective(const std::string& dataset, std::size_t first,
                                                     std::size_t count);
  std::vector<double> read_doubles_collective(const std::string& dataset, std::size_t first,
                                              std::size_t count);

  // How the last read_*_collective call was performed on this rank, as HDF5 reports it
  // (H5Pget_mpio_actual_io_mode, H5Pget_mpio_no_collective_cause).
  struct CollectiveRead {
    bool collective = false;          // all of it in collective MPI-IO (chunked or contiguous)
    std::string io_mode;              // e.g. "chunk collective", "contiguous collective", "serial"
    std::string no_collective_cause;  // why HDF5 fell back to independent I/O; "" if it did not
  };
  const CollectiveRead& last_collective_read() const { return last_read_; }
  bool last_read_was_collective() const { return last_read_.collective; }

  // Creates a dataset of extent `dims` from row-major `data` (size = product of dims), stored
  // as `stored`, chunked by `chunk` (empty: contiguous; every chunk extent must be >= 1 and at
  // most the dataset's). Intermediate groups are created; an existing dataset is an error.
  void write_doubles(const std::string& dataset, std::span<const double> data, const Dims& dims,
                     const Dims& chunk = {}, ElementType stored = ElementType::kFloat64);
  void write_int32(const std::string& dataset, std::span<const std::int32_t> data, const Dims& dims,
                   const Dims& chunk = {}, ElementType stored = ElementType::kInt32);
  void write_int64(const std::string& dataset, std::span<const std::int64_t> data, const Dims& dims,
                   const Dims& chunk = {}, ElementType stored = ElementType::kInt64);

  // Creates a one-dimensional dataset of variable-length UTF-8 strings (as h5py writes a list
  // of str), one per element of `values`.
  void write_strings(const std::string& dataset, std::span<const std::string> values);
  // Creates a dataset without writing it (collective on an MPI-IO file), for write_rows.
  void create_dataset(const std::string& dataset, const Dims& dims, ElementType stored,
                      const Dims& chunk = {});
  // Writes the rows [first, first + count) of the first dimension from row-major `data`. On an
  // MPI-IO file this is one collective write: every rank calls it with its own rows (count may
  // be 0); a rank whose rows do not fit takes part writing nothing and throws afterwards.
  void write_rows(const std::string& dataset, std::size_t first, std::size_t count,
                  std::span<const double> data);
  void write_rows(const std::string& dataset, std::size_t first, std::size_t count,
                  std::span<const std::int64_t> data);

  // Attributes of an existing object (group or dataset). Numeric attributes must hold one
  // element; strings may be fixed- or variable-length (as h5py and MATLAB write them).
  // Writing replaces an attribute of the same name.
  bool has_attribute(const std::string& object, const std::string& name) const;
  double read_double_attribute(const std::string& object, const std::string& name) const;
  std::string read_string_attribute(const std::string& object, const std::string& name) const;
  void write_double_attribute(const std::string& object, const std::string& name, double value);
  void write_string_attribute(const std::string& object, const std::string& name,
                              const std::string& value);
  void remove_attribute(const std::string& object, const std::string& name);

 private:
  Hdf5File(std::string path, std::int64_t id, bool mpi_io)
      : path_(std::move(path)), id_(id), mpi_io_(mpi_io) {}
  static Hdf5File open_existing(const std::string& path, bool writable, const Hdf5Options& options);
  void write_raw(const std::string& dataset, const void* data, std::size_t size, ElementType memory,
                 ElementType stored, const Dims& dims, const Dims& chunk);
  // Rows [first, first + count) of the first dimension, or everything when `whole`.
  template <class T>
  std::vector<T> read_rows(const std::string& dataset, bool whole, std::size_t first,
                           std::size_t count) const;
  template <class T>
  void write_rows_of(const std::string& dataset, std::size_t first, std::size_t count,
                     std::span<const T> data);
  template <class T>
  std::vector<T> read_rows_collective(const std::string& dataset, std::size_t first,
                                      std::size_t count);
  std::int64_t id() const;  // the open file's hid_t; throws when closed
  void close_quietly() noexcept;

  std::string path_;
  std::int64_t id_ = -1;       // hid_t of the open file, -1 when closed
  int image_descriptor_ = -1;  // a serial file created: where close() writes its image
  bool mpi_io_ = false;        // opened through MPI-IO (Hdf5Options::mpi_io)
  CollectiveRead last_read_;
};

// An extent as messages print it, e.g. "[3,100,40]".
std::string format_dims(const Hdf5File::Dims& dims);

}  // namespace spikevi
