// Reading and writing the data-set layout of docs/input-format.md.
#include "spikevi/io/dataset.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <exception>
#include <iostream>
#include <iterator>
#include <limits>
#include <stdexcept>

#include "io/array_layout.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/io/memory_limit.hpp"

namespace spikevi {

std::vector<int> Split::heldin_neurons() const {
  std::vector<bool> held_out(std::max(neurons, 0), false);
  for (int n : heldout_neurons)
    if (n >= 0 && n < neurons) held_out[n] = true;
  std::vector<int> held_in;
  for (int n = 0; n < neurons; ++n)
    if (!held_out[n]) held_in.push_back(n);
  return held_in;
}

double Dataset::total_spikes() const {
  double total = 0.0;
  for (const Eigen::MatrixXd& trial : counts) total += trial.sum();  // valid bins only
  return total;
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The largest spike count accepted in one bin: 2^53, the largest integer from which every
// smaller one is exact as a double (counts are held as doubles).
constexpr std::int64_t kLargestCount = std::int64_t{1} << 53;
// Beyond this magnitude a /continuous value is warned about (docs/input-format.md): squared in
// the objective, such values swamp every other term.
constexpr double kPlausibleScale = 1e12;
// Bytes a held value of /counts, /continuous or /inputs costs at the peak of a read: the
// buffer HDF5 fills (8), the per-trial matrices (8) and the solver's copy of them (8).
constexpr double kBytesPerHeldValue = 24.0;

using Dims = Hdf5File::Dims;
using ElementClass = Hdf5File::ElementClass;

std::string format_value(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return {buffer, result.ptr};
}

std::string format_value(std::int64_t value) { return std::to_string(value); }

// "poisson, negative_binomial or bernoulli": the canonical names /truth's `observation` takes.
std::string model_names(const SpikeModelCatalogue& catalogue) {
  std::string text;
  const auto& models = catalogue.models();
  for (std::size_t i = 0; i < models.size(); ++i)
    text += (i == 0 ? "" : i + 1 == models.size() ? " or " : ", ") + models[i]->name();
  return text;
}

std::string class_name(ElementClass type) {
  switch (type) {
    case ElementClass::kInteger:
      return "integer";
    case ElementClass::kFloat:
      return "floating-point";
    case ElementClass::kString:
      return "string";
    case ElementClass::kOther:
      break;
  }
  return "non-numeric";
}

// Trial k's T x inner row-major slab, first `length` bins, as the inner x length matrix.
template <class T>
Eigen::MatrixXd trial_matrix(const T* slab, std::size_t inner, int length) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  return Eigen::Map<const Matrix>(slab, static_cast<Eigen::Index>(inner), length)
      .template cast<double>();
}

// Reads one file and checks it against every "Refused" rule of the format. Each check throws
// InputError naming the file, the dataset and the offending value.
class Reader {
 public:
  Reader(const std::string& path, const ReadOptions& options)
      : file_(Hdf5File::open_read(path, {.mpi_io = options.collective})), options_(options) {
    data_.path = path;
  }

  Dataset read() {
    if (options_.collective) return read_collectively();
    read_counts_shape();
    read_bin_width();
    read_trial_lengths();
    select_trials();
    check_memory();
    store_counts(read_counts_block(
        [&] { return file_.read_integers("/counts", data_.first_trial, held_); }));
    read_after_counts();
    return std::move(data_);
  }

 private:
  // The checks of read(), with the same collective calls on every rank whatever fails: the open
  // (in the constructor), one collective read of /counts and the close. The first failure is
  // held until the file is closed, then rethrown. Whether /counts can be read at all (it exists,
  // is 3-D, non-empty, integer) is a property of the file, the same on every rank; a rank whose
  // other checks failed still takes part in the read, with no trials.
  Dataset read_collectively() {
    std::exception_ptr failure;
    bool counts_readable = false;
    try {
      read_counts_shape();
      counts_readable = true;
      read_bin_width();
      read_trial_lengths();
      select_trials();
      check_memory();
    } catch (...) {
      failure = std::current_exception();
    }
    if (counts_readable) {
      try {
        {
          const std::vector<std::int64_t> values = read_counts_block([&] {
            return file_.read_integers_collective("/counts", failure ? 0 : data_.first_trial,
                                                  failure ? 0 : held_);
          });
          data_.counts_read_collectively = file_.last_read_was_collective();
          if (!failure) store_counts(values);
        }
        if (!failure) read_after_counts();
      } catch (...) {
        if (!failure) failure = std::current_exception();
      }
    }
    try {
      file_.close();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
    if (failure) std::rethrow_exception(failure);
    return std::move(data_);
  }

  // Everything after /counts: independent reads, also on an MPI-IO file.
  void read_after_counts() {
    read_continuous();
    read_inputs();
    read_split();
    read_truth();
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw InputError(data_.path + ": " + message);
  }

  std::size_t trials() const { return static_cast<std::size_t>(data_.trials); }
  std::size_t bins() const { return static_cast<std::size_t>(data_.bins); }
  std::size_t neurons() const { return static_cast<std::size_t>(data_.neurons); }

  void require(const std::string& name) const {
    if (!file_.exists(name)) fail(name + " is missing");
  }

  void expect_shape(const std::string& name, const Dims& expected, const std::string& meaning) {
    require(name);
    const Dims dims = file_.shape(name);
    if (dims != expected)
      fail(name + " has shape " + format_dims(dims) + "; expected [" + meaning +
           "] = " + format_dims(expected));
  }

  void require_integers(const std::string& name) const {
    const ElementClass type = file_.element_class(name);
    if (type != ElementClass::kInteger)
      fail(name + " has " + class_name(type) + " elements; it must hold integers");
  }

  void read_counts_shape() {
    require("/counts");
    const Dims dims = file_.shape("/counts");
    if (dims.size() != 3)
      fail("/counts has shape " + format_dims(dims) + "; expected 3-D [trials, bins, neurons]");
    require_integers("/counts");
    const char* names[] = {"trials", "bins", "neurons"};
    for (std::size_t i = 0; i < 3; ++i) {
      if (dims[i] == 0) fail("/counts has shape " + format_dims(dims) + ": no " + names[i]);
      if (dims[i] > INT_MAX)
        fail("/counts has shape " + format_dims(dims) + ": more " + names[i] + " than " +
             std::to_string(INT_MAX));
    }
    data_.trials = static_cast<int>(dims[0]);
    data_.bins = static_cast<int>(dims[1]);
    data_.neurons = static_cast<int>(dims[2]);
  }

  std::optional<double> bin_width_on(const std::string& object) {
    if (!file_.has_attribute(object, "bin_width_s")) return std::nullopt;
    const double value = file_.read_double_attribute(object, "bin_width_s");
    if (!std::isfinite(value) || value <= 0.0)
      fail(object + " attribute bin_width_s = " + format_value(value) + " must be finite and > 0");
    return value;
  }

  // Equal up to float32 round-off, so a converter may store one of them in single precision.
  void read_bin_width() {
    const std::optional<double> on_counts = bin_width_on("/counts");
    const std::optional<double> on_root = bin_width_on("/");
    if (!on_counts && !on_root)
      fail("/counts: attribute bin_width_s is missing (on /counts and /)");
    if (on_counts && on_root && std::abs(*on_counts - *on_root) > 1e-6 * *on_root)
      fail("/counts attribute bin_width_s = " + format_value(*on_counts) +
           " differs from bin_width_s = " + format_value(*on_root) + " on /");
    data_.bin_width_s = on_counts ? *on_counts : *on_root;
  }

  // A 1-D integer dataset, of `length` entries when given.
  std::vector<std::int64_t> read_index_list(const std::string& name,
                                            std::optional<std::size_t> length) {
    const Dims dims = file_.shape(name);
    if (dims.size() != 1) fail(name + " has shape " + format_dims(dims) + "; expected 1-D");
    require_integers(name);
    if (length && dims[0] != *length)
      fail(name + " has " + std::to_string(dims[0]) + " entries; /counts has " +
           std::to_string(*length) + " trials");
    return file_.read_integers(name);
  }

  void read_trial_lengths() {
    if (!file_.exists("/trial_lengths")) {
      data_.trial_lengths.assign(trials(), data_.bins);
      return;
    }
    const std::vector<std::int64_t> lengths = read_index_list("/trial_lengths", trials());
    for (std::size_t k = 0; k < lengths.size(); ++k) {
      if (lengths[k] < 1 || lengths[k] > data_.bins)
        fail("/trial_lengths[" + std::to_string(k) + "] = " + format_value(lengths[k]) +
             " is outside 1.." + std::to_string(data_.bins));
      data_.trial_lengths.push_back(static_cast<int>(lengths[k]));
    }
  }

  void select_trials() {
    const int first = options_.first_trial;
    const int count = options_.trial_count < 0 ? data_.trials - first : options_.trial_count;
    if (first < 0 || first > data_.trials || count < 0 || count > data_.trials - first)
      fail("/counts: trials [" + std::to_string(first) + ", " + std::to_string(first + count) +
           ") requested, the file has " + std::to_string(data_.trials));
    data_.first_trial = first;
    held_ = static_cast<std::size_t>(count);
  }

  // The [trials, bins, inner] datasets a read holds and their inner extents; what cannot be
  // listed or is no such dataset is left out here and refused in its place later.
  std::vector<std::pair<std::string, std::size_t>> held_datasets() const {
    std::vector<std::pair<std::string, std::size_t>> parts{{"/counts", neurons()}};
    std::vector<std::string> names{"/inputs"};
    try {
      if (options_.read_continuous && file_.exists("/continuous"))
        for (const std::string& modality : file_.list_children("/continuous"))
          names.push_back("/continuous/" + modality);
    } catch (const InputError&) {
    }
    for (const std::string& name : names) {
      try {
        if (!file_.exists(name)) continue;
        const Dims dims = file_.shape(name);
        if (dims.size() == 3) parts.emplace_back(name, dims[2]);
      } catch (const InputError&) {
      }
    }
    return parts;
  }

  // Refuses, before anything is allocated, a block of trials this process cannot hold: the
  // held values of /counts, /continuous and /inputs at kBytesPerHeldValue each, against the
  // memory available (memory_limit.hpp).
  void check_memory() const {
    const double slab = static_cast<double>(held_) * static_cast<double>(bins());
    double total = 0.0;
    std::string largest;
    double largest_bytes = -1.0;
    for (const auto& [name, inner] : held_datasets()) {
      const double bytes = slab * static_cast<double>(inner) * kBytesPerHeldValue;
      total += bytes;
      if (bytes > largest_bytes) {
        largest = name;
        largest_bytes = bytes;
      }
    }
    const MemoryLimit limit = available_memory();
    if (total <= limit.bytes) return;
    fail(largest + " has shape " + format_dims(file_.shape(largest)) + ": holding " +
         std::to_string(held_) + " of its trials needs about " + format_bytes(total) +
         " of memory in this process, more than the " + format_bytes(limit.bytes) + " " +
         limit.source + "; use more MPI ranks or a smaller file");
  }

  // A read of /counts; a stored value beyond the integers spikevi reads is refused with the
  // largest count it accepts.
  template <class Read>
  std::vector<std::int64_t> read_counts_block(Read read) {
    try {
      return read();
    } catch (const IntegerOutOfRange& error) {
      throw InputError(std::string(error.what()) + "; the largest count accepted is " +
                       std::to_string(kLargestCount));
    }
  }

  // Throws for the first held value of a [trials, bins, inner] dataset for which `bad` holds.
  template <class T, class Bad>
  void refuse_any(const std::vector<T>& values, const std::string& name, std::size_t inner, Bad bad,
                  const std::string& why) const {
    const auto found = std::find_if(values.begin(), values.end(), bad);
    if (found == values.end()) return;
    const auto flat = static_cast<std::size_t>(found - values.begin());
    const std::size_t trial = data_.first_trial + flat / (bins() * inner);
    fail(name + "[" + std::to_string(trial) + "," + std::to_string(flat / inner % bins()) + "," +
         std::to_string(flat % inner) + "] = " + format_value(*found) + ": " + why);
  }

  // The valid bins of each held trial of a [trials, bins, inner] dataset.
  template <class T>
  std::vector<Eigen::MatrixXd> split_trials(const std::vector<T>& values, std::size_t inner) {
    std::vector<Eigen::MatrixXd> out;
    for (std::size_t k = 0; k < held_; ++k)
      out.push_back(trial_matrix(values.data() + k * bins() * inner, inner,
                                 data_.trial_lengths[data_.first_trial + k]));
    return out;
  }

  // The held block of /counts, as read from the file.
  void store_counts(const std::vector<std::int64_t>& values) {
    refuse_any(
        values, "/counts", neurons(), [](std::int64_t v) { return v < 0; },
        "counts must be non-negative");
    refuse_any(
        values, "/counts", neurons(), [](std::int64_t v) { return v > kLargestCount; },
        "more than the largest count accepted, " + std::to_string(kLargestCount));
    data_.counts = split_trials(values, neurons());
  }

  // Checks that `name` is [trials, bins, inner] and returns inner.
  std::size_t per_trial_shape(const std::string& name) {
    const Dims dims = file_.shape(name);
    if (dims.size() != 3 || dims[0] != trials() || dims[1] != bins())
      fail(name + " has shape " + format_dims(dims) + "; its leading dimensions must be " +
           "[trials, bins] = " + format_dims({trials(), bins()}) + " as in /counts");
    return dims[2];
  }

  std::vector<double> read_held(const std::string& name) {
    return file_.read_doubles(name, data_.first_trial, held_);
  }

  void read_continuous() {
    if (!file_.exists("/continuous")) return;
    for (const std::string& modality : file_.list_children("/continuous")) {
      const std::string name = "/continuous/" + modality;
      const std::size_t channels = per_trial_shape(name);
      if (channels == 0)
        fail(name + " has shape " + format_dims(file_.shape(name)) +
             ": no channels (remove the modality, or give it at least one)");
      if (!options_.read_continuous) continue;
      const std::vector<double> values = read_held(name);
      refuse_any(
          values, name, channels, [](double v) { return std::isinf(v); },
          "must not be infinite (NaN marks a missing value)");
      warn_if_implausible(values, name);
      data_.continuous[modality] = split_trials(values, channels);
    }
  }

  // One warning line for a modality whose values exceed any plausible scale (finite, so valid).
  void warn_if_implausible(const std::vector<double>& values, const std::string& name) const {
    double largest = 0.0;
    for (double v : values)
      if (std::abs(v) > largest) largest = std::abs(v);  // NaN (missing) compares false
    if (largest <= kPlausibleScale) return;
    const std::string line = "spikevi: warning: " + data_.path + ": " + name +
                             " holds values as large as " + format_value(largest) +
                             " in magnitude, beyond the plausible scale " +
                             format_value(kPlausibleScale) +
                             " (docs/input-format.md): the fit may be meaningless; rescale the "
                             "modality\n";
    std::cerr << line << std::flush;  // one write: ranks' lines do not interleave
  }

  void read_inputs() {
    if (!file_.exists("/inputs")) return;
    const std::size_t inputs = per_trial_shape("/inputs");
    const std::vector<double> values = read_held("/inputs");
    refuse_any(
        values, "/inputs", inputs, [](double v) { return !std::isfinite(v); },
        "inputs must be finite");
    data_.inputs = split_trials(values, inputs);
  }

  // Indices in [0, limit), none repeated; absent dataset: none. A list longer than `limit`
  // (a damaged extent) is refused before it is read.
  std::vector<int> read_indices(const std::string& name, std::size_t limit) {
    if (!file_.exists(name)) return {};
    const Dims dims = file_.shape(name);
    if (dims.size() == 1 && dims[0] > limit)
      fail(name + " has " + std::to_string(dims[0]) + " entries, more than the " +
           std::to_string(limit) + " distinct indices it can hold");
    const std::vector<std::int64_t> values = read_index_list(name, std::nullopt);
    std::vector<bool> seen(limit, false);
    std::vector<int> out;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::string entry = name + "[" + std::to_string(i) + "] = " + format_value(values[i]);
      if (values[i] < 0 || values[i] >= static_cast<std::int64_t>(limit))
        fail(entry + " is outside 0.." + std::to_string(limit - 1));
      const auto index = static_cast<std::size_t>(values[i]);
      if (seen[index]) fail(entry + " repeats an earlier entry");
      seen[index] = true;
      out.push_back(static_cast<int>(values[i]));
    }
    return out;
  }

  void read_split() {
    if (!file_.exists("/split")) return;
    Split split;
    split.neurons = data_.neurons;
    split.train_trials = read_indices("/split/train_trials", trials());
    split.test_trials = read_indices("/split/test_trials", trials());
    refuse_empty_trial_lists(split);
    split.heldout_neurons = read_indices("/split/heldout_neurons", neurons());
    std::vector<bool> in_train(trials(), false);
    for (int trial : split.train_trials) in_train[trial] = true;
    for (std::size_t i = 0; i < split.test_trials.size(); ++i) {
      const int trial = split.test_trials[i];
      if (in_train[trial])
        fail("/split/test_trials[" + std::to_string(i) + "] = " + std::to_string(trial) +
             " is also in /split/train_trials");
    }
    if (split.heldout_neurons.size() == neurons())
      fail("/split/heldout_neurons holds all " + std::to_string(neurons()) +
           " neurons; at least one must stay held in");
    data_.split = std::move(split);
  }

  // An empty list of trials is no split: it would fit every trial, test trials included.
  // "No split" is said by leaving both lists out.
  void refuse_empty_trial_lists(const Split& split) const {
    const bool has_train = file_.exists("/split/train_trials");
    if (has_train && split.train_trials.empty())
      fail(
          "/split/train_trials is empty; list the trials to fit (leave out both "
          "/split/train_trials and /split/test_trials to fit every trial)");
    if (has_train && file_.exists("/split/test_trials") && split.test_trials.empty())
      fail(
          "/split/test_trials is empty while /split/train_trials is given; list the held-back "
          "trials or leave /split/test_trials out");
  }

  Eigen::MatrixXd read_matrix(const std::string& name, std::size_t rows, std::size_t cols,
                              const std::string& meaning) {
    expect_shape(name, {rows, cols}, meaning);
    return from_row_major(file_.read_doubles(name), static_cast<Eigen::Index>(rows),
                          static_cast<Eigen::Index>(cols));
  }

  Eigen::VectorXd read_vector(const std::string& name, std::size_t size,
                              const std::string& meaning) {
    expect_shape(name, {size}, meaning);
    const std::vector<double> values = file_.read_doubles(name);
    return Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(size));
  }

  // Per-trial truth ([trials, bins, inner]) for the held trials, empty when absent.
  std::vector<Eigen::MatrixXd> read_truth_trials(const std::string& name, std::size_t inner,
                                                 const std::string& meaning) {
    if (!file_.exists(name)) return {};
    expect_shape(name, {trials(), bins(), inner}, meaning);
    return split_trials(read_held(name), inner);
  }

  std::size_t truth_dim() {
    require("/truth/A");
    const Dims dims = file_.shape("/truth/A");
    if (dims.size() != 2 || dims[0] != dims[1] || dims[0] == 0)
      fail("/truth/A has shape " + format_dims(dims) + "; expected [D, D] with D >= 1");
    return dims[0];
  }

  void read_truth() {
    if (!options_.read_truth || !file_.exists("/truth")) return;
    Truth truth;
    if (file_.has_attribute("/truth", "observation"))
      truth.observation = file_.read_string_attribute("/truth", "observation");
    const SpikeModelCatalogue& catalogue =
        options_.spike_models ? *options_.spike_models : builtin_spike_models();
    const std::shared_ptr<const SpikeModel> model = catalogue.find(truth.observation);
    if (!model || model->name() != truth.observation)
      fail("/truth attribute observation = '" + truth.observation + "' must be " +
           model_names(catalogue));
    const std::size_t dim = truth_dim();
    expect_shape("/truth/C", {neurons(), dim}, "neurons, D");  // before A of a damaged D is read
    truth.A = read_matrix("/truth/A", dim, dim, "D, D");
    truth.C = read_matrix("/truth/C", neurons(), dim, "neurons, D");
    truth.d = read_vector("/truth/d", neurons(), "neurons");
    truth.b = read_vector("/truth/b", dim, "D");
    truth.B = read_input_gains(dim);
    truth.Q = read_matrix("/truth/Q", dim, dim, "D, D");
    truth.mu0 = read_vector("/truth/mu0", dim, "D");
    truth.Sigma0 = read_matrix("/truth/Sigma0", dim, dim, "D, D");
    for (const RowParameterSpec& spec : model->row_parameters()) {
      const std::string name = "/truth/" + spec.name;
      if (!file_.exists(name))
        fail(name + " is missing; observation = " + truth.observation + " needs it");
      truth.row_parameters[spec.name] = read_vector(name, neurons(), "neurons");
    }
    truth.latents = read_truth_trials("/truth/latents", dim, "trials, bins, D");
    truth.rates = read_truth_trials("/truth/rates", neurons(), "trials, bins, neurons");
    read_continuous_truth(dim, truth);
    if (file_.exists("/truth/mlp_W")) {  // a simulated MLP readout
      const std::size_t hidden = file_.shape("/truth/mlp_W").at(0);
      truth.mlp_W = read_matrix("/truth/mlp_W", hidden, dim, "H, D");
      truth.mlp_A = read_matrix("/truth/mlp_A", neurons(), hidden, "neurons, H");
      truth.mlp_b = read_vector("/truth/mlp_b", hidden, "H");
    }
    data_.truth = std::move(truth);
  }

  // /truth/B [D, inputs], optional; empty when absent.
  Eigen::MatrixXd read_input_gains(std::size_t dim) {
    if (!file_.exists("/truth/B")) return {};
    if (!file_.exists("/inputs")) fail("/truth/B is given but /inputs is missing");
    return read_matrix("/truth/B", dim, file_.shape("/inputs")[2], "D, inputs");
  }

  // /truth/NAME_W [channels, D], NAME_e and NAME_R [channels] of each /continuous/NAME that has
  // any of them: then all three.
  void read_continuous_truth(std::size_t dim, Truth& truth) {
    if (!file_.exists("/continuous")) return;
    for (const std::string& modality : file_.list_children("/continuous")) {
      const std::string prefix = "/truth/" + modality + "_";
      const std::string names[] = {prefix + "W", prefix + "e", prefix + "R"};
      if (std::none_of(std::begin(names), std::end(names),
                       [&](const std::string& name) { return file_.exists(name); }))
        continue;
      for (const std::string& name : names)
        if (!file_.exists(name))
          fail(name + " is missing; the truth of /continuous/" + modality + " needs " + prefix +
               "W, " + prefix + "e and " + prefix + "R");
      const std::size_t channels = file_.shape("/continuous/" + modality)[2];
      ContinuousTruth& readout = truth.continuous[modality];
      readout.W = read_matrix(names[0], channels, dim, "channels, D");
      readout.e = read_vector(names[1], channels, "channels");
      readout.R = read_vector(names[2], channels, "channels");
    }
  }

  Hdf5File file_;
  ReadOptions options_;
  Dataset data_;
  std::size_t held_ = 0;  // trials read: first_trial .. first_trial + held_ - 1
};

// ---- writing ----

// Per-trial matrices (rows x T_k) as a row-major [trials, bins, rows] array, `pad` past T_k.
std::vector<double> pack_trials(const std::vector<Eigen::MatrixXd>& per_trial, const Dataset& data,
                                std::size_t rows, double pad, const std::string& what) {
  const std::size_t slab = static_cast<std::size_t>(data.bins) * rows;
  if (per_trial.size() != static_cast<std::size_t>(data.trials))
    throw std::invalid_argument("write_dataset: " + what + " has " +
                                std::to_string(per_trial.size()) + " trials, expected " +
                                std::to_string(data.trials));
  std::vector<double> out(per_trial.size() * slab, pad);
  for (std::size_t k = 0; k < per_trial.size(); ++k) {
    const Eigen::MatrixXd& m = per_trial[k];
    if (static_cast<std::size_t>(m.rows()) != rows || m.cols() != data.trial_lengths[k])
      throw std::invalid_argument("write_dataset: " + what + " of trial " + std::to_string(k) +
                                  " is " + std::to_string(m.rows()) + " x " +
                                  std::to_string(m.cols()) + ", expected " + std::to_string(rows) +
                                  " x " + std::to_string(data.trial_lengths[k]));
    std::copy(m.data(), m.data() + m.size(), out.begin() + static_cast<std::ptrdiff_t>(k * slab));
  }
  return out;
}

Dims per_trial_dims(const Dataset& data, std::size_t rows) {
  return {static_cast<std::size_t>(data.trials), static_cast<std::size_t>(data.bins), rows};
}

// One trial per chunk, so that MPI ranks read disjoint chunks; HDF5 forbids empty chunks.
Dims trial_chunk(const Dataset& data, std::size_t rows) {
  if (rows == 0) return {};
  return {1, static_cast<std::size_t>(data.bins), rows};
}

void write_per_trial(Hdf5File& file, const std::string& name,
                     const std::vector<Eigen::MatrixXd>& per_trial, const Dataset& data,
                     double pad) {
  const std::size_t rows = per_trial.empty() ? 0 : static_cast<std::size_t>(per_trial[0].rows());
  file.write_doubles(name, pack_trials(per_trial, data, rows, pad, name),
                     per_trial_dims(data, rows), trial_chunk(data, rows));
}

void write_counts(Hdf5File& file, const Dataset& data) {
  const std::size_t neurons = static_cast<std::size_t>(data.neurons);
  const std::vector<double> packed = pack_trials(data.counts, data, neurons, 0.0, "/counts");
  std::vector<std::int32_t> counts(packed.size());
  for (std::size_t i = 0; i < packed.size(); ++i) {
    if (!(packed[i] >= 0.0 && packed[i] <= INT32_MAX))
      throw std::invalid_argument("write_dataset: count " + format_value(packed[i]) +
                                  " does not fit a non-negative int32");
    counts[i] = static_cast<std::int32_t>(std::lround(packed[i]));
  }
  file.write_int32("/counts", counts, per_trial_dims(data, neurons), trial_chunk(data, neurons));
  file.write_double_attribute("/counts", "bin_width_s", data.bin_width_s);
  file.write_double_attribute("/", "bin_width_s", data.bin_width_s);
  const std::vector<std::int32_t> lengths(data.trial_lengths.begin(), data.trial_lengths.end());
  file.write_int32("/trial_lengths", lengths, {lengths.size()});
}

void write_indices(Hdf5File& file, const std::string& name, const std::vector<int>& indices) {
  const std::vector<std::int32_t> values(indices.begin(), indices.end());
  file.write_int32(name, values, {values.size()});
}

// An empty list is left out: an empty trial list is refused on reading.
void write_split(Hdf5File& file, const Split& split) {
  if (!split.train_trials.empty()) write_indices(file, "/split/train_trials", split.train_trials);
  if (!split.test_trials.empty()) write_indices(file, "/split/test_trials", split.test_trials);
  if (!split.heldout_neurons.empty())
    write_indices(file, "/split/heldout_neurons", split.heldout_neurons);
  if (split.train_trials.empty() && split.test_trials.empty() && split.heldout_neurons.empty())
    file.create_group("/split");
}

void write_matrix(Hdf5File& file, const std::string& name, const Eigen::MatrixXd& matrix) {
  file.write_doubles(
      name, row_major(matrix),
      {static_cast<std::size_t>(matrix.rows()), static_cast<std::size_t>(matrix.cols())});
}

void write_vector(Hdf5File& file, const std::string& name, const Eigen::VectorXd& vector) {
  file.write_doubles(name, as_vector(vector), {static_cast<std::size_t>(vector.size())});
}

void write_truth(Hdf5File& file, const Dataset& data) {
  const Truth& truth = *data.truth;
  write_matrix(file, "/truth/C", truth.C);
  write_vector(file, "/truth/d", truth.d);
  write_matrix(file, "/truth/A", truth.A);
  write_vector(file, "/truth/b", truth.b);
  if (truth.B.size() > 0) write_matrix(file, "/truth/B", truth.B);
  write_matrix(file, "/truth/Q", truth.Q);
  write_vector(file, "/truth/mu0", truth.mu0);
  write_matrix(file, "/truth/Sigma0", truth.Sigma0);
  for (const auto& [name, values] : truth.row_parameters)
    write_vector(file, "/truth/" + name, values);
  if (!truth.latents.empty()) write_per_trial(file, "/truth/latents", truth.latents, data, kNaN);
  if (!truth.rates.empty()) write_per_trial(file, "/truth/rates", truth.rates, data, kNaN);
  if (truth.mlp_W.size() > 0) {
    write_matrix(file, "/truth/mlp_A", truth.mlp_A);
    write_matrix(file, "/truth/mlp_W", truth.mlp_W);
    write_vector(file, "/truth/mlp_b", truth.mlp_b);
  }
  for (const auto& [name, readout] : truth.continuous) {
    write_matrix(file, "/truth/" + name + "_W", readout.W);
    write_vector(file, "/truth/" + name + "_e", readout.e);
    write_vector(file, "/truth/" + name + "_R", readout.R);
  }
  file.write_string_attribute("/truth", "observation", truth.observation);
}

void check_complete(const Dataset& data) {
  const auto trials = static_cast<std::size_t>(data.trials);
  if (data.first_trial != 0 || data.counts.size() != trials || data.trial_lengths.size() != trials)
    throw std::invalid_argument("write_dataset: needs all " + std::to_string(trials) +
                                " trials held and their trial_lengths");
}

}  // namespace

Dataset read_dataset(const std::string& path, const ReadOptions& options) {
  return Reader(path, options).read();
}

void write_dataset(const std::string& path, const Dataset& data,
                   const std::map<std::string, std::string>& provenance) {
  check_complete(data);
  Hdf5File file = Hdf5File::create(path);
  for (const auto& [key, value] : provenance) file.write_string_attribute("/", key, value);
  write_counts(file, data);
  for (const auto& [name, per_trial] : data.continuous)
    write_per_trial(file, "/continuous/" + name, per_trial, data, kNaN);
  if (!data.inputs.empty()) write_per_trial(file, "/inputs", data.inputs, data, 0.0);
  if (data.split) write_split(file, *data.split);
  if (data.truth) write_truth(file, data);
  file.close();
}

std::vector<int> training_trials(const Dataset& data) {
  std::vector<int> trials;
  if (data.split && !data.split->train_trials.empty()) {
    trials = data.split->train_trials;
    std::sort(trials.begin(), trials.end());
  } else {
    for (int k = 0; k < data.trials; ++k) trials.push_back(k);
  }
  return trials;
}

}  // namespace spikevi
