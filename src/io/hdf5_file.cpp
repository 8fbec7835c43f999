// The only file of spikevi that includes hdf5.h (house rule: one file talks to HDF5). It is
// the I/O layer, so it also names MPI_COMM_WORLD for parallel HDF5 (Hdf5Options::mpi_io); it
// sends no messages.
#include "spikevi/io/hdf5_file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include "spikevi/error.hpp"

namespace spikevi {
namespace {

static_assert(std::is_same_v<hid_t, std::int64_t>, "Hdf5File stores a hid_t as std::int64_t");

// Growth step of a serial file's in-memory image.
constexpr std::size_t kImageIncrement = std::size_t{1} << 20;

// Owns one HDF5 identifier and releases it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  hid_t get() const { return id_; }

 private:
  hid_t id_;
  Closer closer_;
};

// Failures raise InputError; the HDF5 library's own printing of its error stack is noise.
void silence_hdf5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// HDF5's system-call failures ("file write failed: time = ...\n, filename = ..., errno = 28,
// error message = 'No space left on device', buf = ...") shortened to "file write failed: No
// space left on device"; any other message with its line breaks as spaces.
std::string one_line(std::string message) {
  const std::string marker = "error message = '";
  const std::size_t quoted = message.find(marker);
  const std::size_t what_end = message.find(':');
  if (quoted != std::string::npos && what_end != std::string::npos && what_end < quoted) {
    const std::size_t begin = quoted + marker.size();
    const std::size_t end = message.find('\'', begin);
    message = message.substr(0, what_end) + ": " + message.substr(begin, end - begin);
  }
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

// The innermost message on HDF5's error stack: the one that says what actually went wrong.
std::string hdf5_reason() {
  std::string reason;
  const auto innermost = [](unsigned n, const H5E_error2_t* error, void* out) -> herr_t {
    if (n == 0 && error->desc != nullptr) *static_cast<std::string*>(out) = error->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &reason);
  return reason.empty() ? "HDF5 error" : one_line(reason);
}

[[noreturn]] void fail(const std::string& path, const std::string& object,
                       const std::string& what) {
  throw InputError(path + ": " + object + ": " + what);
}

// Returns `status`, or throws naming the object and HDF5's reason when it signals failure.
template <class Status>
Status check(Status status, const std::string& path, const std::string& object,
             const std::string& action) {
  if (status < 0) fail(path, object, action + " (" + hdf5_reason() + ")");
  return status;
}

std::string absolute(const std::string& object) {
  return !object.empty() && object.front() == '/' ? object : "/" + object;
}

// True when every link on the way to `object` exists and the last one resolves to an object.
bool object_exists(hid_t file, const std::string& object) {
  const std::string path = absolute(object);
  for (std::size_t end = path.find('/', 1); end != std::string::npos;
       end = path.find('/', end + 1)) {
    if (H5Lexists(file, path.substr(0, end).c_str(), H5P_DEFAULT) <= 0) return false;
  }
  if (path == "/") return true;
  return H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0 &&
         H5Oexists_by_name(file, path.c_str(), H5P_DEFAULT) > 0;
}

void require_exists(hid_t file, const std::string& path, const std::string& object) {
  if (!object_exists(file, object)) fail(path, object, "does not exist");
}

hid_t native_type(Hdf5File::ElementType type) {
  using T = Hdf5File::ElementType;
  switch (type) {
    case T::kUint8:
      return H5T_NATIVE_UINT8;
    case T::kUint16:
      return H5T_NATIVE_UINT16;
    case T::kInt32:
      return H5T_NATIVE_INT32;
    case T::kInt64:
      return H5T_NATIVE_INT64;
    case T::kFloat32:
      return H5T_NATIVE_FLOAT;
    case T::kFloat64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_DOUBLE;
}

hid_t file_type(Hdf5File::ElementType type) {
  using T = Hdf5File::ElementType;
  switch (type) {
    case T::kUint8:
      return H5T_STD_U8LE;
    case T::kUint16:
      return H5T_STD_U16LE;
    case T::kInt32:
      return H5T_STD_I32LE;
    case T::kInt64:
      return H5T_STD_I64LE;
    case T::kFloat32:
      return H5T_IEEE_F32LE;
    case T::kFloat64:
      return H5T_IEEE_F64LE;
  }
  return H5T_IEEE_F64LE;
}

template <class T>
hid_t native_type_of() {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, std::int64_t>);
  return std::is_same_v<T, double> ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
}

Hdf5File::ElementClass element_class_of(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return Hdf5File::ElementClass::kInteger;
    case H5T_FLOAT:
      return Hdf5File::ElementClass::kFloat;
    case H5T_STRING:
      return Hdf5File::ElementClass::kString;
    default:
      return Hdf5File::ElementClass::kOther;
  }
}

// The in-memory file `file` written to `descriptor`: "" on success, else the reason.
std::string write_image(hid_t file, int descriptor) {
  if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) return hdf5_reason();
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  if (size < 0) return hdf5_reason();
  std::vector<char> image(static_cast<std::size_t>(size));
  if (H5Fget_file_image(file, image.data(), image.size()) < 0) return hdf5_reason();
  std::size_t written = 0;
  while (written < image.size()) {
    const ssize_t step = ::write(descriptor, image.data() + written, image.size() - written);
    if (step < 0 && errno == EINTR) continue;
    if (step < 0) return std::string("file write failed: ") + std::strerror(errno);
    written += static_cast<std::size_t>(step);
  }
  return "";
}

Hdf5File::Dims extent(hid_t space) {
  std::vector<hsize_t> dims(std::max(H5Sget_simple_extent_ndims(space), 0));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

// Sets the file driver on a file access property list: MPI-IO over MPI_COMM_WORLD for mpi_io
// (with no hints: Open MPI's default OMPIO component), else HDF5's default serial driver.
void configure_access(hid_t access, const Hdf5Options& options, const std::string& path) {
  if (!options.mpi_io) return;
  int initialised = 0;
  int finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (!initialised || finalised)
    throw std::logic_error(path + ": Hdf5Options::mpi_io needs MPI to be initialised");
  check(H5Pset_fapl_mpio(access, MPI_COMM_WORLD, MPI_INFO_NULL), path, "/", "cannot set up MPI-IO");
}

// What H5Pget_mpio_actual_io_mode reports, in words.
std::string io_mode_name(H5D_mpio_actual_io_mode_t mode) {
  switch (mode) {
    case H5D_MPIO_NO_COLLECTIVE:
      return "no collective";
    case H5D_MPIO_CHUNK_INDEPENDENT:
      return "chunk independent";
    case H5D_MPIO_CHUNK_COLLECTIVE:
      return "chunk collective";
    case H5D_MPIO_CHUNK_MIXED:
      return "chunk mixed";
    case H5D_MPIO_CONTIGUOUS_COLLECTIVE:
      return "contiguous collective";
  }
  return "unknown (" + std::to_string(static_cast<int>(mode)) + ")";
}

// The reasons set in an H5Pget_mpio_no_collective_cause bit mask, in words; "" for none.
std::string no_collective_cause_names(std::uint32_t causes) {
  static const std::pair<std::uint32_t, const char*> kNames[] = {
      {H5D_MPIO_SET_INDEPENDENT, "independent I/O was requested"},
      {H5D_MPIO_DATATYPE_CONVERSION, "datatype conversion"},
      {H5D_MPIO_DATA_TRANSFORMS, "data transforms"},
      {H5D_MPIO_MPI_OPT_TYPES_ENV_VAR_DISABLED, "MPI derived types disabled (HDF5_MPI_OPT_TYPES)"},
      {H5D_MPIO_NOT_SIMPLE_OR_SCALAR_DATASPACES, "dataspaces neither simple nor scalar"},
      {H5D_MPIO_NOT_CONTIGUOUS_OR_CHUNKED_DATASET, "dataset neither contiguous nor chunked"},
      {H5D_MPIO_PARALLEL_FILTERED_WRITES_DISABLED, "parallel filtered writes disabled"},
      {H5D_MPIO_ERROR_WHILE_CHECKING_COLLECTIVE_POSSIBLE, "error while checking for collective"}};
  std::string names;
  for (const auto& [bit, name] : kNames)
    if (causes & bit) names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

// True for a stored unsigned integer type of 64 bits, whose values above INT64_MAX HDF5's
// conversion to std::int64_t would clamp.
bool is_unsigned_64(hid_t type) {
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE &&
         H5Tget_size(type) == 8;
}

// Refuses the first of `values` (native unsigned 64-bit) above INT64_MAX; the others have
// the same bits as the std::int64_t they stand for.
void refuse_beyond_int64(const std::uint64_t* values, std::size_t size, const std::string& path,
                         const std::string& dataset) {
  constexpr auto kLargest = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (std::size_t i = 0; i < size; ++i)
    if (values[i] > kLargest)
      throw IntegerOutOfRange(path + ": " + dataset + ": element " + std::to_string(i) + " = " +
                              std::to_string(values[i]) +
                              " is beyond the largest integer spikevi reads, " +
                              std::to_string(kLargest));
}

Handle open_dataset(hid_t file, const std::string& path, const std::string& name) {
  require_exists(file, path, name);
  return {check(H5Dopen2(file, name.c_str(), H5P_DEFAULT), path, name, "cannot open as a dataset"),
          H5Dclose};
}

Handle open_attribute(hid_t file, const std::string& path, const std::string& object,
                      const std::string& name) {
  require_exists(file, path, object);
  const std::string label = "attribute " + name;
  if (check(H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT), path, object,
            "cannot query " + label) <= 0)
    fail(path, object, label + " does not exist");
  return {check(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), path,
                object, "cannot open " + label),
          H5Aclose};
}

// Creates (replacing any of the same name) a scalar attribute stored as `stored` and writes
// `value`, held in memory as `memory`.
void write_attribute(hid_t file, const std::string& path, const std::string& object,
                     const std::string& name, hid_t stored, hid_t memory, const void* value) {
  require_exists(file, path, object);
  const std::string label = "attribute " + name;
  const char* object_c = object.c_str();
  if (check(H5Aexists_by_name(file, object_c, name.c_str(), H5P_DEFAULT), path, object,
            "cannot query " + label) > 0)
    check(H5Adelete_by_name(file, object_c, name.c_str(), H5P_DEFAULT), path, object,
          "cannot replace " + label);
  const Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const Handle attribute(check(H5Acreate_by_name(file, object_c, name.c_str(), stored, space.get(),
                                                 H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                               path, object, "cannot create " + label),
                         H5Aclose);
  check(H5Awrite(attribute.get(), memory, value), path, object, "cannot write " + label);
}

// Selects rows [first, first + count) of the first dimension of a dataset of extent `dims` in
// `file_space` (nothing when count is 0, so that a rank can join a collective call empty-handed)
// and returns the matching one-dimensional memory space.
Handle select_rows(hid_t file_space, const Hdf5File::Dims& dims, std::size_t first,
                   std::size_t count, const std::string& path, const std::string& dataset) {
  const std::size_t row = std::accumulate(dims.empty() ? dims.end() : dims.begin() + 1, dims.end(),
                                          std::size_t{1}, std::multiplies<>());
  const hsize_t size = count * row;
  const hsize_t memory_extent = std::max<hsize_t>(size, 1);
  Handle memory_space(H5Screate_simple(1, &memory_extent, nullptr), H5Sclose);
  if (size == 0) {
    check(H5Sselect_none(file_space), path, dataset, "cannot select rows");
    check(H5Sselect_none(memory_space.get()), path, dataset, "cannot select rows");
  } else {
    std::vector<hsize_t> start(dims.size(), 0), counts(dims.begin(), dims.end());
    start[0] = first;
    counts[0] = count;
    check(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, counts.data(),
                              nullptr),
          path, dataset, "cannot select rows");
  }
  return memory_space;
}

// Creates `dataset` of extent `dims` stored as `stored` (chunked by `chunk` unless empty),
// with any missing groups; fails when it exists.
Handle create_dataset_handle(hid_t file, const std::string& path, const std::string& dataset,
                             Hdf5File::ElementType stored, const Hdf5File::Dims& dims,
                             const Hdf5File::Dims& chunk) {
  if (H5Lexists(file, dataset.c_str(), H5P_DEFAULT) > 0) fail(path, dataset, "already exists");
  const std::vector<hsize_t> extent_h(dims.begin(), dims.end());
  const Handle space(
      dims.empty() ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), extent_h.data(), nullptr),
      H5Sclose);
  const Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(links.get(), 1);
  const Handle creation(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!chunk.empty()) {
    const std::vector<hsize_t> chunk_h(chunk.begin(), chunk.end());
    check(H5Pset_chunk(creation.get(), static_cast<int>(chunk.size()), chunk_h.data()), path,
          dataset, "invalid chunk " + format_dims(chunk));
  }
  return Handle(check(H5Dcreate2(file, dataset.c_str(), file_type(stored), space.get(), links.get(),
                                 creation.get(), H5P_DEFAULT),
                      path, dataset, "cannot create"),
                H5Dclose);
}

}  // namespace

std::string format_dims(const Hdf5File::Dims& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? "," : "") + std::to_string(dims[i]);
  return out + "]";
}

Hdf5File Hdf5File::open_read(const std::string& path, const Hdf5Options& options) {
  return open_existing(path, false, options);
}

Hdf5File Hdf5File::open_read_write(const std::string& path, const Hdf5Options& options) {
  return open_existing(path, true, options);
}

bool Hdf5File::has_hdf5_signature(const std::string& path) {
  silence_hdf5_errors();
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return false;
  return H5Fis_hdf5(path.c_str()) > 0;
}

Hdf5File Hdf5File::open_existing(const std::string& path, bool writable,
                                 const Hdf5Options& options) {
  silence_hdf5_errors();
  std::error_code error;
  if (!std::filesystem::exists(path, error) && !error) throw InputError(path + ": no such file");
  if (std::filesystem::is_directory(path, error))
    throw InputError(path + ": not a readable HDF5 file (a directory)");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) {
    const std::string reason = is_hdf5 == 0 ? "no HDF5 signature" : hdf5_reason();
    throw InputError(path + ": not a readable HDF5 file (" + reason + ")");
  }
  const Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  configure_access(access.get(), options, path);
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, access.get());
  if (id < 0) {
    const std::string what = writable ? "cannot open for writing" : "not a readable HDF5 file";
    throw InputError(path + ": " + what + " (" + hdf5_reason() + ")");
  }
  return Hdf5File(path, id, options.mpi_io);
}

Hdf5File Hdf5File::create(const std::string& path, const Hdf5Options& options) {
  silence_hdf5_errors();
  const Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  configure_access(access.get(), options, path);
  int descriptor = -1;
  if (!options.mpi_io) {
    // Serial files are built in memory and written out by close(): a full disk then fails a
    // write(2) of ours, never a flush inside HDF5 (whose failed H5Fclose leaves a dangling
    // file id that crashes the library's shutdown).
    descriptor = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (descriptor < 0)
      throw InputError(path + ": cannot create HDF5 file (" + std::strerror(errno) + ")");
    check(H5Pset_fapl_core(access.get(), kImageIncrement, 0), path, "/",
          "cannot set up the in-memory file");
  }
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get());
  if (id < 0) {
    if (descriptor >= 0) ::close(descriptor);
    throw InputError(path + ": cannot create HDF5 file (" + hdf5_reason() + ")");
  }
  Hdf5File file(path, id, options.mpi_io);
  file.image_descriptor_ = descriptor;
  return file;
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept
    : path_(std::move(other.path_)),
      id_(std::exchange(other.id_, -1)),
      image_descriptor_(std::exchange(other.image_descriptor_, -1)),
      mpi_io_(other.mpi_io_),
      last_read_(std::move(other.last_read_)) {}

Hdf5File& Hdf5File::operator=(Hdf5File&& other) noexcept {
  if (this != &other) {
    close_quietly();
    path_ = std::move(other.path_);
    id_ = std::exchange(other.id_, -1);
    image_descriptor_ = std::exchange(other.image_descriptor_, -1);
    mpi_io_ = other.mpi_io_;
    last_read_ = std::move(other.last_read_);
  }
  return *this;
}

Hdf5File::~Hdf5File() { close_quietly(); }

void Hdf5File::close_quietly() noexcept {
  try {
    close();
  } catch (...) {
  }
}

void Hdf5File::close() {
  if (id_ < 0) return;
  const hid_t id = std::exchange(id_, -1);
  const int descriptor = std::exchange(image_descriptor_, -1);
  std::string failure = descriptor >= 0 ? write_image(id, descriptor) : "";
  if (H5Fclose(id) < 0 && failure.empty()) failure = hdf5_reason();
  if (descriptor >= 0 && ::close(descriptor) != 0 && failure.empty())
    failure = std::strerror(errno);
  if (!failure.empty()) throw InputError(path_ + ": cannot close (" + failure + ")");
}

std::int64_t Hdf5File::id() const {
  if (id_ < 0) throw InputError(path_ + ": the file is closed");
  return id_;
}

bool Hdf5File::exists(const std::string& object) const { return object_exists(id(), object); }

std::vector<std::string> Hdf5File::list_children(const std::string& group) const {
  require_exists(id(), path_, group);
  const Handle opened(
      check(H5Gopen2(id(), group.c_str(), H5P_DEFAULT), path_, group, "cannot open as a group"),
      H5Gclose);
  std::vector<std::string> names;
  const auto collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  check(H5Literate(opened.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names), path_,
        group, "cannot list members");
  return names;
}

void Hdf5File::remove(const std::string& object) {
  require_exists(id(), path_, object);
  check(H5Ldelete(id(), object.c_str(), H5P_DEFAULT), path_, object, "cannot delete");
}

void Hdf5File::create_group(const std::string& group) {
  if (exists(group)) return;
  const Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(links.get(), 1);
  const Handle created(check(H5Gcreate2(id(), group.c_str(), links.get(), H5P_DEFAULT, H5P_DEFAULT),
                             path_, group, "cannot create group"),
                       H5Gclose);
}

Hdf5File::Dims Hdf5File::shape(const std::string& dataset) const {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle space(H5Dget_space(opened.get()), H5Sclose);
  return extent(space.get());
}

Hdf5File::ElementClass Hdf5File::element_class(const std::string& dataset) const {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle type(H5Dget_type(opened.get()), H5Tclose);
  return element_class_of(type.get());
}

template <class T>
std::vector<T> Hdf5File::read_rows(const std::string& dataset, bool whole, std::size_t first,
                                   std::size_t count) const {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle type(H5Dget_type(opened.get()), H5Tclose);
  const ElementClass stored = element_class_of(type.get());
  if (stored != ElementClass::kInteger && stored != ElementClass::kFloat)
    fail(path_, dataset, "has a non-numeric element type");
  const Handle file_space(H5Dget_space(opened.get()), H5Sclose);
  if (!whole) {
    const Dims dims = extent(file_space.get());
    std::vector<hsize_t> start(dims.size(), 0);
    if (dims.empty() || first > dims[0] || count > dims[0] - first)
      fail(path_, dataset,
           "rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
               ") are outside its extent " + format_dims(dims));
    std::vector<hsize_t> counts(dims.begin(), dims.end());
    start[0] = first;
    counts[0] = count;
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                              counts.data(), nullptr),
          path_, dataset, "cannot select rows");
  }
  const auto size = static_cast<hsize_t>(H5Sget_select_npoints(file_space.get()));
  std::vector<T> out(size);
  if (size == 0) return out;  // collective I/O (later) will need every rank to call H5Dread
  const Handle memory_space(H5Screate_simple(1, &size, nullptr), H5Sclose);
  const bool unsigned_64 = std::is_integral_v<T> && is_unsigned_64(type.get());
  check(H5Dread(opened.get(), unsigned_64 ? H5T_NATIVE_UINT64 : native_type_of<T>(),
                memory_space.get(), file_space.get(), H5P_DEFAULT, out.data()),
        path_, dataset, "cannot read");
  if (unsigned_64)
    refuse_beyond_int64(reinterpret_cast<const std::uint64_t*>(out.data()), out.size(), path_,
                        dataset);
  return out;
}

std::vector<double> Hdf5File::read_doubles(const std::string& dataset) const {
  return read_rows<double>(dataset, true, 0, 0);
}

std::vector<double> Hdf5File::read_doubles(const std::string& dataset, std::size_t first,
                                           std::size_t count) const {
  return read_rows<double>(dataset, false, first, count);
}

std::vector<std::int64_t> Hdf5File::read_integers(const std::string& dataset) const {
  if (element_class(dataset) != ElementClass::kInteger)
    fail(path_, dataset, "has a non-integer element type");
  return read_rows<std::int64_t>(dataset, true, 0, 0);
}

std::vector<std::int64_t> Hdf5File::read_integers(const std::string& dataset, std::size_t first,
                                                  std::size_t count) const {
  if (element_class(dataset) != ElementClass::kInteger)
    fail(path_, dataset, "has a non-integer element type");
  return read_rows<std::int64_t>(dataset, false, first, count);
}

std::vector<std::int64_t> Hdf5File::read_integers_or_enum(const std::string& dataset) const {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle type(H5Dget_type(opened.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_ENUM) return read_integers(dataset);
  const Handle base(H5Tget_super(type.get()), H5Tclose);
  if (H5Tget_class(base.get()) != H5T_INTEGER)
    fail(path_, dataset, "is an enumerated type over a non-integer base");
  // Read in the enum's native form, then convert its integer base to std::int64_t in place.
  const Handle native(H5Tget_native_type(type.get(), H5T_DIR_ASCEND), H5Tclose);
  const Handle native_base(H5Tget_super(native.get()), H5Tclose);
  const Handle space(H5Dget_space(opened.get()), H5Sclose);
  const auto size = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
  std::vector<std::int64_t> out(std::max<std::size_t>(size, 1));
  if (size == 0) return {};
  check(H5Dread(opened.get(), native.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path_,
        dataset, "cannot read");
  check(H5Tconvert(native_base.get(), H5T_NATIVE_INT64, size, out.data(), nullptr, H5P_DEFAULT),
        path_, dataset, "cannot convert the values read");
  return out;
}

std::vector<std::string> Hdf5File::read_strings(const std::string& dataset) const {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle type(H5Dget_type(opened.get()), H5Tclose);
  if (element_class_of(type.get()) != ElementClass::kString)
    fail(path_, dataset, "does not hold strings");
  const Handle space(H5Dget_space(opened.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) > 1)
    fail(path_, dataset, "has shape " + format_dims(extent(space.get())) + "; expected 1-D text");
  const auto size = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
  std::vector<std::string> out;
  if (size == 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    const Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
    std::vector<char*> texts(size, nullptr);
    check(H5Dread(opened.get(), memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, texts.data()), path_,
          dataset, "cannot read");
    for (char* text : texts) out.emplace_back(text != nullptr ? text : "");
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, texts.data());
    return out;
  }
  const std::size_t width = H5Tget_size(type.get());
  std::string buffer(size * width, '\0');
  check(H5Dread(opened.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), path_,
        dataset, "cannot read");
  const bool space_padded = H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD;
  for (std::size_t i = 0; i < size; ++i) {
    std::string text = buffer.substr(i * width, width);
    text.resize(std::min(text.size(), text.find('\0')));
    if (space_padded) text.erase(text.find_last_not_of(' ') + 1);
    out.push_back(std::move(text));
  }
  return out;
}

template <class T>
std::vector<T> Hdf5File::read_rows_collective(const std::string& dataset, std::size_t first,
                                              std::size_t count) {
  last_read_ = {};
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle stored(H5Dget_type(opened.get()), H5Tclose);
  const ElementClass stored_class = element_class_of(stored.get());
  if (std::is_integral_v<T> && stored_class != ElementClass::kInteger)
    fail(path_, dataset, "has a non-integer element type");
  if (stored_class != ElementClass::kInteger && stored_class != ElementClass::kFloat)
    fail(path_, dataset, "has a non-numeric element type");

  // Rows this rank may not read: it takes part selecting nothing and throws after the read.
  const Handle file_space(H5Dget_space(opened.get()), H5Sclose);
  const Dims dims = extent(file_space.get());
  std::string refused;
  if (dims.empty() || first > dims[0] || count > dims[0] - first) {
    refused = "rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
              ") are outside its extent " + format_dims(dims);
    count = 0;
  }
  const std::size_t row = std::accumulate(dims.empty() ? dims.end() : dims.begin() + 1, dims.end(),
                                          std::size_t{1}, std::multiplies<>());
  const hsize_t size = count * row;
  const Handle memory_space = select_rows(file_space.get(), dims, first, count, path_, dataset);

  // Room for `size` values of the stored type or of T, whichever is wider: H5Tconvert below
  // converts in place.
  const std::size_t width = std::max(H5Tget_size(stored.get()), sizeof(T));
  std::vector<T> out(std::max<std::size_t>(size, 1) * ((width + sizeof(T) - 1) / sizeof(T)));
  const Handle transfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (mpi_io_)
    check(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), path_, dataset,
          "cannot request collective I/O");
  check(H5Dread(opened.get(), stored.get(), memory_space.get(), file_space.get(), transfer.get(),
                out.data()),
        path_, dataset, "cannot read");
  if (mpi_io_) {
    H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
    std::uint32_t local_cause = 0;
    std::uint32_t global_cause = 0;
    check(H5Pget_mpio_actual_io_mode(transfer.get(), &mode), path_, dataset,
          "cannot query the I/O mode");
    check(H5Pget_mpio_no_collective_cause(transfer.get(), &local_cause, &global_cause), path_,
          dataset, "cannot query the I/O mode");
    last_read_.collective =
        mode == H5D_MPIO_CHUNK_COLLECTIVE || mode == H5D_MPIO_CONTIGUOUS_COLLECTIVE;
    last_read_.io_mode = io_mode_name(mode);
    last_read_.no_collective_cause = no_collective_cause_names(local_cause | global_cause);
  } else {
    last_read_.io_mode = "serial";
    last_read_.no_collective_cause = "the file was not opened with MPI-IO";
  }
  const bool unsigned_64 = std::is_integral_v<T> && is_unsigned_64(stored.get());
  if (size > 0)
    check(H5Tconvert(stored.get(), unsigned_64 ? H5T_NATIVE_UINT64 : native_type_of<T>(), size,
                     out.data(), nullptr, H5P_DEFAULT),
          path_, dataset, "cannot convert the values read");
  if (unsigned_64)
    refuse_beyond_int64(reinterpret_cast<const std::uint64_t*>(out.data()), size, path_, dataset);
  out.resize(size);
  if (!refused.empty()) fail(path_, dataset, refused);
  return out;
}

std::vector<std::int64_t> Hdf5File::read_integers_collective(const std::string& dataset,
                                                             std::size_t first, std::size_t count) {
  return read_rows_collective<std::int64_t>(dataset, first, count);
}

std::vector<double> Hdf5File::read_doubles_collective(const std::string& dataset, std::size_t first,
                                                      std::size_t count) {
  return read_rows_collective<double>(dataset, first, count);
}

void Hdf5File::write_raw(const std::string& dataset, const void* data, std::size_t size,
                         ElementType memory, ElementType stored, const Dims& dims,
                         const Dims& chunk) {
  const std::size_t expected =
      std::accumulate(dims.begin(), dims.end(), std::size_t{1}, std::multiplies<>());
  if (size != expected)
    fail(path_, dataset, std::to_string(size) + " values for extent " + format_dims(dims));
  const Handle created = create_dataset_handle(id(), path_, dataset, stored, dims, chunk);
  if (size == 0) return;
  check(H5Dwrite(created.get(), native_type(memory), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path_,
        dataset, "cannot write");
}

void Hdf5File::write_strings(const std::string& dataset, std::span<const std::string> values) {
  const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);  // variable-length UTF-8, as h5py writes str
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  if (H5Lexists(id(), dataset.c_str(), H5P_DEFAULT) > 0) fail(path_, dataset, "already exists");
  const hsize_t extent = values.size();
  const Handle space(H5Screate_simple(1, &extent, nullptr), H5Sclose);
  const Handle links(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(links.get(), 1);
  const Handle created(check(H5Dcreate2(id(), dataset.c_str(), type.get(), space.get(), links.get(),
                                        H5P_DEFAULT, H5P_DEFAULT),
                             path_, dataset, "cannot create"),
                       H5Dclose);
  if (values.empty()) return;
  std::vector<const char*> texts;
  for (const std::string& value : values) texts.push_back(value.c_str());
  check(H5Dwrite(created.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, texts.data()), path_,
        dataset, "cannot write");
}

void Hdf5File::create_dataset(const std::string& dataset, const Dims& dims, ElementType stored,
                              const Dims& chunk) {
  create_dataset_handle(id(), path_, dataset, stored, dims, chunk);
}

template <class T>
void Hdf5File::write_rows_of(const std::string& dataset, std::size_t first, std::size_t count,
                             std::span<const T> data) {
  const Handle opened = open_dataset(id(), path_, dataset);
  const Handle file_space(H5Dget_space(opened.get()), H5Sclose);
  const Dims dims = extent(file_space.get());
  const std::size_t row = std::accumulate(dims.empty() ? dims.end() : dims.begin() + 1, dims.end(),
                                          std::size_t{1}, std::multiplies<>());
  // A rank with bad arguments still takes part, selecting nothing, and throws afterwards.
  std::string refused;
  if (dims.empty() || first > dims[0] || count > dims[0] - first || data.size() != count * row) {
    refused = "cannot write rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
              ") from " + std::to_string(data.size()) + " values into extent " + format_dims(dims);
    count = 0;
  }
  const hsize_t size = count * row;
  const Handle memory_space = select_rows(file_space.get(), dims, first, count, path_, dataset);
  const Handle transfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (mpi_io_)
    check(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), path_, dataset,
          "cannot request collective I/O");
  const T placeholder{};
  check(H5Dwrite(opened.get(), native_type_of<T>(), memory_space.get(), file_space.get(),
                 transfer.get(), size > 0 ? data.data() : &placeholder),
        path_, dataset, "cannot write");
  if (!refused.empty()) fail(path_, dataset, refused);
}

void Hdf5File::write_rows(const std::string& dataset, std::size_t first, std::size_t count,
                          std::span<const double> data) {
  write_rows_of<double>(dataset, first, count, data);
}

void Hdf5File::write_rows(const std::string& dataset, std::size_t first, std::size_t count,
                          std::span<const std::int64_t> data) {
  write_rows_of<std::int64_t>(dataset, first, count, data);
}

void Hdf5File::write_doubles(const std::string& dataset, std::span<const double> data,
                             const Dims& dims, const Dims& chunk, ElementType stored) {
  write_raw(dataset, data.data(), data.size(), ElementType::kFloat64, stored, dims, chunk);
}

void Hdf5File::write_int32(const std::string& dataset, std::span<const std::int32_t> data,
                           const Dims& dims, const Dims& chunk, ElementType stored) {
  write_raw(dataset, data.data(), data.size(), ElementType::kInt32, stored, dims, chunk);
}

void Hdf5File::write_int64(const std::string& dataset, std::span<const std::int64_t> data,
                           const Dims& dims, const Dims& chunk, ElementType stored) {
  write_raw(dataset, data.data(), data.size(), ElementType::kInt64, stored, dims, chunk);
}

bool Hdf5File::has_attribute(const std::string& object, const std::string& name) const {
  require_exists(id(), path_, object);
  return check(H5Aexists_by_name(id(), object.c_str(), name.c_str(), H5P_DEFAULT), path_, object,
               "cannot query attribute " + name) > 0;
}

double Hdf5File::read_double_attribute(const std::string& object, const std::string& name) const {
  const Handle attribute = open_attribute(id(), path_, object, name);
  const Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const ElementClass stored = element_class_of(type.get());
  if (stored != ElementClass::kInteger && stored != ElementClass::kFloat)
    fail(path_, object, "attribute " + name + " is not a number");
  const Handle space(H5Aget_space(attribute.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(path_, object,
         "attribute " + name + " has shape " + format_dims(extent(space.get())) +
             "; expected one value");
  double value = 0.0;
  check(H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value), path_, object,
        "cannot read attribute " + name);
  return value;
}

std::string Hdf5File::read_string_attribute(const std::string& object,
                                            const std::string& name) const {
  const Handle attribute = open_attribute(id(), path_, object, name);
  const Handle type(H5Aget_type(attribute.get()), H5Tclose);
  const Handle space(H5Aget_space(attribute.get()), H5Sclose);
  if (element_class_of(type.get()) != ElementClass::kString ||
      H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(path_, object, "attribute " + name + " is not a single string");
  const std::string action = "cannot read attribute " + name;
  if (H5Tis_variable_str(type.get()) > 0) {
    char* text = nullptr;
    check(H5Aread(attribute.get(), type.get(), &text), path_, object, action);
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  std::string buffer(H5Tget_size(type.get()), '\0');
  check(H5Aread(attribute.get(), type.get(), buffer.data()), path_, object, action);
  buffer.resize(buffer.find('\0') == std::string::npos ? buffer.size() : buffer.find('\0'));
  if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD) buffer.erase(buffer.find_last_not_of(' ') + 1);
  return buffer;
}

void Hdf5File::write_double_attribute(const std::string& object, const std::string& name,
                                      double value) {
  write_attribute(id(), path_, object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void Hdf5File::write_string_attribute(const std::string& object, const std::string& name,
                                      const std::string& value) {
  const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);  // variable-length UTF-8, as h5py writes str
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* text = value.c_str();
  write_attribute(id(), path_, object, name, type.get(), type.get(), &text);
}

void Hdf5File::remove_attribute(const std::string& object, const std::string& name) {
  open_attribute(id(), path_, object, name);  // throws when missing; closed at once
  check(H5Adelete_by_name(id(), object.c_str(), name.c_str(), H5P_DEFAULT), path_, object,
        "cannot delete attribute " + name);
}

}  // namespace spikevi
