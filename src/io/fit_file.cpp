#include "spikevi/io/fit_file.hpp"

#include <cmath>
#include <limits>

#include "io/array_layout.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"

namespace spikevi {
namespace {

using Dims = Hdf5File::Dims;
constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

std::size_t dim_of(Eigen::Index n) { return static_cast<std::size_t>(n); }

void write_matrix(Hdf5File& file, const std::string& name, const Eigen::MatrixXd& m) {
  file.write_doubles(name, row_major(m), {dim_of(m.rows()), dim_of(m.cols())});
}

void write_vector(Hdf5File& file, const std::string& name, const Eigen::VectorXd& v) {
  file.write_doubles(name, as_vector(v), {dim_of(v.size())});
}

void write_mniw(Hdf5File& file, const std::string& group, const MatrixNormalInverseWishart& q) {
  write_matrix(file, group + "/M", q.M);
  write_matrix(file, group + "/V", q.V);
  write_matrix(file, group + "/Psi", q.Psi);
  file.write_doubles(group + "/nu", std::vector<double>{q.nu}, {1});
}

// Blocks of D x D (or (D+1) x (D+1)) stored side by side -> [count, side, side] row-major.
std::vector<double> stacked_blocks(const Eigen::MatrixXd& blocks, Eigen::Index side) {
  std::vector<double> out;
  out.reserve(dim_of(blocks.size()));
  for (Eigen::Index b = 0; b < blocks.cols() / side; ++b) {
    const std::vector<double> one = row_major(blocks.middleCols(b * side, side));
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

Eigen::MatrixXd readout_covariances(const Readout& readout) {
  const Eigen::Index side = readout.dim() + 1;
  Eigen::MatrixXd cov(side, readout.precision.cols());
  for (Eigen::Index n = 0; n < readout.rows(); ++n)
    cov.middleCols(n * side, side) = readout.precision.middleCols(n * side, side)
                                         .llt()
                                         .solve(Eigen::MatrixXd::Identity(side, side));
  return cov;
}

// --history (docs/output-files.md): /globals/history/{B [N,F], precision [N,F,F], projection
// [P,H], mean [H], rows [H]} and the attributes lags, prior_precision.
void write_history(Hdf5File& file, const HistoryCoupling& h) {
  const std::size_t F = dim_of(h.features());
  write_matrix(file, "/globals/history/B", h.B);
  file.write_doubles("/globals/history/precision", stacked_blocks(h.precision, h.features()),
                     {dim_of(h.B.rows()), F, F});
  write_matrix(file, "/globals/history/projection", h.basis.projection);
  write_vector(file, "/globals/history/mean", h.basis.mean);
  const std::vector<std::int64_t> rows(h.basis.rows.begin(), h.basis.rows.end());
  file.write_int64("/globals/history/rows", rows, {rows.size()});
  file.write_double_attribute("/globals/history", "lags", h.basis.lags);
  file.write_double_attribute("/globals/history", "prior_precision", h.prior_precision);
}

// /globals/NAME_log_precision (or _logit_precision): the Laplace precision of a row parameter.
std::string precision_dataset(const RowParameterSpec& spec) {
  return "/globals/" + spec.name + "_" + transform_name(spec.transform) + "_precision";
}

void write_globals(Hdf5File& file, const GlobalState& g) {
  const std::size_t N = dim_of(g.spikes.rows());
  const std::size_t D = dim_of(g.dim());
  write_matrix(file, "/globals/C", g.spikes.C);
  write_vector(file, "/globals/d", g.spikes.d);
  write_matrix(file, "/globals/A", g.dynamics.mean_A());
  write_vector(file, "/globals/b", g.dynamics.mean_b());
  if (g.dynamics.inputs() > 0) write_matrix(file, "/globals/B", g.dynamics.mean_B());
  write_matrix(file, "/globals/Q", g.dynamics.mean_Q());
  write_vector(file, "/globals/mu0", g.mu0);
  write_matrix(file, "/globals/Sigma0", g.Sigma0);
  file.write_doubles("/globals/readout_covariance",
                     stacked_blocks(readout_covariances(g.spikes), D + 1), {N, D + 1, D + 1});
  file.write_doubles("/globals/readout_precision", stacked_blocks(g.spikes.precision, D + 1),
                     {N, D + 1, D + 1});
  write_mniw(file, "/globals/dynamics", g.dynamics);
  write_mniw(file, "/globals/dynamics_prior", g.dynamics_prior);
  if (g.mlp.active()) {  // --readout mlp (docs/output-files.md)
    write_matrix(file, "/globals/mlp/A", g.mlp.A);
    write_matrix(file, "/globals/mlp/W", g.mlp.W);
    write_vector(file, "/globals/mlp/b", g.mlp.b);
    file.write_double_attribute("/globals/mlp", "prior_precision", g.mlp_prior_precision);
  }
  if (g.history.active()) write_history(file, g.history);
  write_vector(file, "/globals/readout_prior/mean", g.spikes_prior.mean);
  write_matrix(file, "/globals/readout_prior/precision", g.spikes_prior.precision);
  for (const RowParameter& parameter : g.spike_parameters.parameters) {
    write_vector(file, "/globals/" + parameter.spec.name, parameter.values);
    write_vector(file, precision_dataset(parameter.spec), parameter.precision);
  }
  for (const ContinuousReadout& modality : g.continuous) {
    const std::string group = "/globals/continuous/" + modality.name;
    const std::size_t channels = dim_of(modality.channels());
    write_matrix(file, group + "/W", modality.readout.C);
    write_vector(file, group + "/e", modality.readout.d);
    write_vector(file, group + "/R", modality.variances);
    file.write_doubles(group + "/readout_covariance",
                       stacked_blocks(readout_covariances(modality.readout), D + 1),
                       {channels, D + 1, D + 1});
    file.write_doubles(group + "/readout_precision",
                       stacked_blocks(modality.readout.precision, D + 1), {channels, D + 1, D + 1});
  }
}

void write_trace(Hdf5File& file, const std::vector<IterationRecord>& trace) {
  std::vector<double> elbo, per_spike, change, seconds, local, batch, rho, undone;
  for (const IterationRecord& r : trace) {
    elbo.push_back(r.elbo);
    per_spike.push_back(r.elbo_per_spike);
    change.push_back(r.relative_change);
    seconds.push_back(r.seconds);
    local.push_back(r.local_iterations);
    batch.push_back(r.batch_trials);
    rho.push_back(r.rho);
    undone.push_back(r.rejected_readout_rows);
  }
  const Dims dims{trace.size()};
  file.write_doubles("/elbo", elbo, dims);
  file.write_doubles("/trace/elbo_per_spike", per_spike, dims);
  file.write_doubles("/trace/relative_change", change, dims);
  file.write_doubles("/trace/seconds", seconds, dims);
  file.write_doubles("/trace/local_iterations", local, dims);
  file.write_doubles("/trace/batch_trials", batch, dims);
  file.write_doubles("/trace/rho", rho, dims);
  file.write_doubles("/trace/undone_readout_rows", undone, dims);
}

void write_latents(Hdf5File& file, const FitRecord& record) {
  const std::size_t K = record.trials.size();
  const std::size_t T = dim_of(record.padded_bins);
  const std::size_t D = dim_of(record.globals.dim());
  std::vector<double> mean(K * T * D, kMissing), cov(K * T * D * D, kMissing);
  for (std::size_t k = 0; k < K; ++k) {
    const GaussianMoments& q = record.latents[k];
    for (int t = 0; t < q.bins(); ++t) {
      const std::size_t bin = k * T + dim_of(t);
      for (std::size_t i = 0; i < D; ++i)
        mean[bin * D + i] = q.mean(static_cast<Eigen::Index>(i), t);
      const std::vector<double> block = row_major(q.cov_block(t));
      std::copy(block.begin(), block.end(), cov.begin() + static_cast<std::ptrdiff_t>(bin * D * D));
    }
  }
  std::vector<std::int64_t> trials(record.trials.begin(), record.trials.end());
  file.write_int64("/latents/trials", trials, {K});
  file.write_doubles("/latents/mean", mean, {K, T, D}, {1, T, D});
  file.write_doubles("/latents/cov", cov, {K, T, D, D}, {1, T, D, D});
}

// A dataset that must hold exactly rows x cols values (a vector when cols == 1).
Eigen::MatrixXd read_checked(const Hdf5File& file, const std::string& name, Eigen::Index rows,
                             Eigen::Index cols) {
  if (!file.exists(name))
    throw InputError(file.path() + ": " + name + " is missing: not a complete spikevi fit file");
  const std::vector<double> values = file.read_doubles(name);
  if (values.size() != static_cast<std::size_t>(rows * cols))
    throw InputError(file.path() + ": " + name + " has shape " + format_dims(file.shape(name)) +
                     ", expected " + std::to_string(rows) + " x " + std::to_string(cols) +
                     " values");
  return from_row_major(values, rows, cols);
}

// /globals/history of write_history (docs/output-files.md), for N spike rows.
HistoryCoupling read_history(const Hdf5File& file, const std::string& path, Eigen::Index N) {
  HistoryCoupling h;
  const Hdf5File::Dims shape = file.shape("/globals/history/projection");
  const std::vector<std::int64_t> rows = file.read_integers("/globals/history/rows");
  const auto lags = static_cast<int>(file.read_double_attribute("/globals/history", "lags"));
  if (shape.size() != 2 || shape[1] != rows.size() || lags < 1)
    throw InputError(path + ": /globals/history is inconsistent (projection " + format_dims(shape) +
                     ", " + std::to_string(rows.size()) + " rows, lags " + std::to_string(lags) +
                     ")");
  const auto P = static_cast<Eigen::Index>(shape[0]);
  const auto H = static_cast<Eigen::Index>(rows.size());
  for (std::int64_t row : rows)
    if (row < 0 || row >= N)
      throw InputError(path + ": /globals/history/rows names row " + std::to_string(row) + " of " +
                       std::to_string(N));
  h.basis.lags = lags;
  h.basis.rows.assign(rows.begin(), rows.end());
  h.basis.projection = read_checked(file, "/globals/history/projection", P, H);
  h.basis.mean = read_checked(file, "/globals/history/mean", H, 1);
  const Eigen::Index F = lags * P;
  h.B = read_checked(file, "/globals/history/B", N, F);
  h.precision = read_checked(file, "/globals/history/precision", N * F, F).transpose();
  h.prior_precision = file.read_double_attribute("/globals/history", "prior_precision");
  return h;
}

// M is D x (D + U + 1) with U known inputs (0 without).
MatrixNormalInverseWishart read_mniw(const Hdf5File& file, const std::string& group, int D) {
  MatrixNormalInverseWishart q;
  const Hdf5File::Dims m_shape =
      file.exists(group + "/M") ? file.shape(group + "/M") : Hdf5File::Dims{};
  const Eigen::Index columns = m_shape.size() == 2 && m_shape[1] > static_cast<std::size_t>(D)
                                   ? static_cast<Eigen::Index>(m_shape[1])
                                   : D + 1;
  q.M = read_checked(file, group + "/M", D, columns);
  q.V = read_checked(file, group + "/V", columns, columns);
  q.Psi = read_checked(file, group + "/Psi", D, D);
  q.nu = read_checked(file, group + "/nu", 1, 1)(0, 0);
  return q;
}

}  // namespace

void write_fit(const std::string& path, const FitRecord& record) {
  Hdf5File file = Hdf5File::create(path);
  write_trace(file, record.trace);
  write_globals(file, record.globals);
  if (!record.trials.empty()) write_latents(file, record);
  const double elbo = record.trace.empty() ? kMissing : record.elbo;
  file.write_double_attribute("/", "elbo", elbo);
  file.write_double_attribute("/", "elbo_per_spike", elbo / std::max(record.spike_count, 1.0));
  file.write_double_attribute("/", "evidence_laplace", record.evidence_laplace);
  file.write_double_attribute("/", "spike_count", record.spike_count);
  file.write_string_attribute("/", "termination", record.termination);
  file.write_string_attribute("/", "observation", record.model.spikes->name());
  file.write_string_attribute("/", "family", family_name(record.model.family));
  file.write_string_attribute("/", "expectations", expectations_name(record.model.expectations));
  file.write_string_attribute("/", "readout", readout_name(record.model.readout));
  if (record.model.readout == ReadoutKind::kMlp) {
    file.write_double_attribute("/", "cubature_points", record.model.cubature_points);
    file.write_double_attribute("/", "cubature_rotations", record.model.cubature_rotations);
  }
  for (const auto& [key, value] : record.provenance) file.write_string_attribute("/", key, value);
  file.write_doubles("/config/latents", std::vector<double>{double(record.globals.dim())}, {1});
  for (const auto& [key, value] : record.configuration)
    file.write_string_attribute("/config", key, value);
  if (!record.timing.empty()) {
    file.create_group("/timing");
    for (const auto& [key, value] : record.timing)
      file.write_double_attribute("/timing", key, value);
  }
  file.close();
}

GlobalState read_fit_globals(const std::string& path,
                             const std::vector<RowParameterSpec>& row_parameters) {
  const Hdf5File file = Hdf5File::open_read(path);
  if (!file.exists("/globals/C"))
    throw InputError(path + ": /globals/C is missing: not a spikevi fit file");
  const Hdf5File::Dims c_shape = file.shape("/globals/C");
  if (c_shape.size() != 2 || c_shape[0] == 0 || c_shape[1] == 0)
    throw InputError(path + ": /globals/C has shape " + format_dims(c_shape) +
                     ", expected [neurons, latents]");
  const auto N = static_cast<Eigen::Index>(c_shape[0]);
  const auto D = static_cast<Eigen::Index>(c_shape[1]);
  GlobalState g;
  g.spikes.C = read_checked(file, "/globals/C", N, D);
  g.spikes.d = read_checked(file, "/globals/d", N, 1);
  g.mu0 = read_checked(file, "/globals/mu0", D, 1);
  g.Sigma0 = read_checked(file, "/globals/Sigma0", D, D);
  g.dynamics = read_mniw(file, "/globals/dynamics", static_cast<int>(D));
  g.dynamics_prior = read_mniw(file, "/globals/dynamics_prior", static_cast<int>(D));
  // [N, D+1, D+1] row-major: each block's rows are contiguous, so the whole array read as an
  // N(D+1) x (D+1) row-major matrix, transposed, gives the (symmetric) blocks side by side.
  g.spikes.precision =
      read_checked(file, "/globals/readout_precision", N * (D + 1), D + 1).transpose();
  g.spikes_prior.mean = read_checked(file, "/globals/readout_prior/mean", D + 1, 1);
  g.spikes_prior.precision = read_checked(file, "/globals/readout_prior/precision", D + 1, D + 1);
  g.spike_parameters = RowParameters::at_prior(row_parameters, static_cast<int>(N));
  for (RowParameter& parameter : g.spike_parameters.parameters) {
    parameter.values = read_checked(file, "/globals/" + parameter.spec.name, N, 1);
    parameter.precision = read_checked(file, precision_dataset(parameter.spec), N, 1);
  }
  if (file.exists("/globals/mlp")) {
    const Hdf5File::Dims w_shape = file.shape("/globals/mlp/W");
    if (w_shape.size() != 2 || w_shape[0] == 0 || w_shape[1] != static_cast<std::size_t>(D))
      throw InputError(path + ": /globals/mlp/W has shape " + format_dims(w_shape) +
                       ", expected [hidden, " + std::to_string(D) + "]");
    const auto H = static_cast<Eigen::Index>(w_shape[0]);
    g.mlp.W = read_checked(file, "/globals/mlp/W", H, D);
    g.mlp.A = read_checked(file, "/globals/mlp/A", N, H);
    g.mlp.b = read_checked(file, "/globals/mlp/b", H, 1);
    g.mlp_prior_precision = file.read_double_attribute("/globals/mlp", "prior_precision");
  }
  if (file.exists("/globals/history")) g.history = read_history(file, path, N);
  g.continuous_prior = g.spikes_prior;
  if (file.exists("/globals/continuous")) {
    for (const std::string& name : file.list_children("/globals/continuous")) {
      const std::string group = "/globals/continuous/" + name;
      const Hdf5File::Dims w_shape = file.shape(group + "/W");
      if (w_shape.size() != 2 || w_shape[1] != static_cast<std::size_t>(D))
        throw InputError(path + ": " + group + "/W has shape " + format_dims(w_shape) +
                         ", expected [channels, " + std::to_string(D) + "]");
      const auto channels = static_cast<Eigen::Index>(w_shape[0]);
      ContinuousReadout modality =
          make_continuous_readout(name, static_cast<int>(channels), g.continuous_prior);
      modality.readout.C = read_checked(file, group + "/W", channels, D);
      modality.readout.d = read_checked(file, group + "/e", channels, 1);
      modality.variances = read_checked(file, group + "/R", channels, 1);
      modality.readout.precision =
          read_checked(file, group + "/readout_precision", channels * (D + 1), D + 1).transpose();
      g.continuous.push_back(std::move(modality));
    }
  }
  return g;
}

FitModel read_fit_model(const std::string& path, const SpikeModelCatalogue& models) {
  FitModel fit;
  std::vector<RowParameterSpec> row_parameters;
  {
    const Hdf5File file = Hdf5File::open_read(path);
    const auto attribute = [&](const char* name, const char* fallback) {
      return file.has_attribute("/", name) ? file.read_string_attribute("/", name)
                                           : std::string(fallback);
    };
    const std::string observation = attribute("observation", "poisson");
    std::shared_ptr<const SpikeModel> spikes = models.find(observation);
    if (!spikes)
      throw InputError(path + ": observation = '" + observation + "' is not a spike model of " +
                       "this program (it knows " + models.choices() + ")");
    fit.model = ModelSettings::for_model(std::move(spikes),
                                         parse_family(attribute("family", "gauss-markov")));
    fit.model.expectations = parse_expectations(attribute("expectations", "closed-form"));
    fit.model.readout = parse_readout(attribute("readout", "linear"));
    if (fit.model.readout == ReadoutKind::kMlp) {
      if (!file.exists("/globals/mlp"))
        throw InputError(path + ": readout = mlp but /globals/mlp is missing");
      fit.model.cubature_points =
          static_cast<int>(file.read_double_attribute("/", "cubature_points"));
      // Fit files written before the rotated rule used the same nodes in every bin.
      fit.model.cubature_rotations =
          file.has_attribute("/", "cubature_rotations")
              ? static_cast<int>(file.read_double_attribute("/", "cubature_rotations"))
              : 0;
    }
    row_parameters = fit.model.spikes->row_parameters();
    for (const RowParameterSpec& spec : row_parameters)
      if (!file.exists("/globals/" + spec.name))
        throw InputError(path + ": observation = " + observation + " but /globals/" + spec.name +
                         " is missing");
  }
  fit.globals = read_fit_globals(path, row_parameters);
  if (fit.model.readout == ReadoutKind::kMlp) fit.model.hidden = fit.globals.mlp.hidden();
  return fit;
}

}  // namespace spikevi

namespace spikevi {

std::unique_ptr<ObservationModel> FitModel::spike_model() const {
  ModelSettings settings = model;
  settings.expectations = default_expectations(*model.spikes);
  return settings.spike_observation(globals.spike_parameters);
}

}  // namespace spikevi

namespace spikevi {

namespace {

void check_fit_matches_neurons(const FitModel& fit, const std::string& fit_path,
                               const Dataset& data) {
  if (fit.globals.spikes.rows() != data.neurons)
    throw InputError(fit_path + ": /globals/C has " + std::to_string(fit.globals.spikes.rows()) +
                     " rows but " + data.path + " has " + std::to_string(data.neurons) +
                     " neurons");
}

}  // namespace

void check_fit_matches_data(const FitModel& fit, const std::string& fit_path, const Dataset& data) {
  check_fit_matches_neurons(fit, fit_path, data);
  const int fit_inputs = fit.globals.dynamics.inputs();
  const int data_inputs = data.inputs.empty() ? 0 : static_cast<int>(data.inputs.front().rows());
  if (fit_inputs != data_inputs)
    throw InputError(fit_path + " was fitted with " + std::to_string(fit_inputs) +
                     " known input(s) (/globals/B) but " + data.path + " has " +
                     std::to_string(data_inputs) + " in /inputs");
}

Dataset read_dataset_for_fit(const std::string& data_path, const FitModel& fit,
                             const std::string& fit_path) {
  const ReadOptions metadata{.trial_count = 0, .read_truth = false, .read_continuous = false};
  check_fit_matches_neurons(fit, fit_path, read_dataset(data_path, metadata));
  Dataset data = read_dataset(data_path);
  check_fit_matches_data(fit, fit_path, data);
  return data;
}

}  // namespace spikevi
