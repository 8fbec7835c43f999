#include "spikevi/io/encoder_file.hpp"

#include "io/array_layout.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"

namespace spikevi {
namespace {

std::size_t dim_of(Eigen::Index n) { return static_cast<std::size_t>(n); }

void write_vector(Hdf5File& file, const std::string& name, const Eigen::VectorXd& v) {
  file.write_doubles(name, as_vector(v), {dim_of(v.size())});
}

Eigen::VectorXd read_vector(const Hdf5File& file, const std::string& name) {
  const std::vector<double> values = file.read_doubles(name);
  return Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
}

int read_int_attribute(const Hdf5File& file, const std::string& name) {
  return static_cast<int>(file.read_double_attribute("/encoder", name));
}

}  // namespace

Sites gauge_sites(const Sites& sites, const AffineGauge& gauge) {
  const auto dim = static_cast<int>(sites.shift.rows());
  const Eigen::MatrixXd inverse = gauge.M.inverse();
  Sites out;
  out.precision.resize(dim, sites.precision.cols());
  out.shift.resize(dim, sites.shift.cols());
  for (int t = 0; t < sites.bins(); ++t) {
    const Eigen::MatrixXd L =
        inverse.transpose() * sites.precision.middleCols(Eigen::Index{t} * dim, dim) * inverse;
    out.precision.middleCols(Eigen::Index{t} * dim, dim) = 0.5 * (L + L.transpose());
    out.shift.col(t) = inverse.transpose() * sites.shift.col(t) +
                       out.precision.middleCols(Eigen::Index{t} * dim, dim) * gauge.v;
  }
  return out;
}

Sites EncoderRecord::encode(const Eigen::ArrayXXd& counts) const {
  Eigen::ArrayXXd input(static_cast<Eigen::Index>(input_neurons.size()), counts.cols());
  for (std::size_t r = 0; r < input_neurons.size(); ++r) {
    if (input_neurons[r] >= counts.rows())
      throw InputError("encoder: input neuron " + std::to_string(input_neurons[r]) +
                       " is not in the trial's counts");
    input.row(static_cast<Eigen::Index>(r)) = counts.row(input_neurons[r]);
  }
  return gauge_sites(encoder.predict_sites(input), gauge);
}

void write_encoder(const std::string& path, const EncoderRecord& r) {
  Hdf5File file = Hdf5File::open_read_write(path);
  const EncoderShape& shape = r.encoder.shape();
  write_vector(file, "/encoder/weights", r.encoder.parameters());
  std::vector<std::int64_t> rows(r.input_neurons.begin(), r.input_neurons.end());
  file.write_int64("/encoder/input_neurons", rows, {rows.size()});
  const Eigen::Index P = r.encoder.parameters().size();
  const bool have_moments = r.moments.first.size() == P;
  write_vector(file, "/encoder/adam_first",
               have_moments ? Eigen::VectorXd(r.moments.first.reshaped().matrix())
                            : Eigen::VectorXd::Zero(P));
  write_vector(file, "/encoder/adam_second",
               have_moments ? Eigen::VectorXd(r.moments.second.reshaped().matrix())
                            : Eigen::VectorXd::Zero(P));
  file.write_doubles("/encoder/gauge_M", row_major(r.gauge.M),
                     {dim_of(r.gauge.M.rows()), dim_of(r.gauge.M.cols())});
  write_vector(file, "/encoder/gauge_v", r.gauge.v);
  write_vector(file, "/encoder/final_kl_per_dimension", r.final_kl_per_dimension);
  write_vector(file, "/encoder/final_mean_variance", r.final_mean_variance);
  file.write_double_attribute("/encoder", "hidden", shape.hidden);
  file.write_double_attribute("/encoder", "window", shape.window);
  file.write_double_attribute("/encoder", "latents", shape.latents);
  file.write_double_attribute("/encoder", "adam_steps", r.moments.steps);
  file.write_doubles("/trace/beta", r.beta, {r.beta.size()});
  const auto iterations = dim_of(r.kl_per_dimension.rows());
  file.write_doubles("/trace/kl_per_dimension", row_major(r.kl_per_dimension),
                     {iterations, dim_of(r.kl_per_dimension.cols())});
  std::vector<std::int64_t> active(r.active_units.begin(), r.active_units.end());
  file.write_int64("/trace/active_units", active, {active.size()});
  file.write_string_attribute("/", "inference", "amortised");
  file.write_double_attribute("/", "active_units", r.final_active_units);
  file.close();
}

std::optional<EncoderRecord> read_encoder(const std::string& path) {
  const Hdf5File file = Hdf5File::open_read(path);
  if (!file.exists("/encoder")) return std::nullopt;
  EncoderRecord r;
  for (const std::int64_t row : file.read_integers("/encoder/input_neurons"))
    r.input_neurons.push_back(static_cast<int>(row));
  const EncoderShape shape{.inputs = static_cast<int>(r.input_neurons.size()),
                           .hidden = read_int_attribute(file, "hidden"),
                           .window = read_int_attribute(file, "window"),
                           .latents = read_int_attribute(file, "latents")};
  try {
    r.encoder = SiteEncoder(shape, read_vector(file, "/encoder/weights"));
  } catch (const Error& error) {
    throw InputError(path + ": /encoder does not hold a usable encoder: " + error.what());
  }
  const std::vector<double> M = file.read_doubles("/encoder/gauge_M");
  if (M.size() != dim_of(shape.latents) * dim_of(shape.latents))
    throw InputError(path + ": /encoder/gauge_M is not D x D");
  r.gauge.M = from_row_major(M, shape.latents, shape.latents);
  r.gauge.v = read_vector(file, "/encoder/gauge_v");
  r.moments.first = read_vector(file, "/encoder/adam_first").array();
  r.moments.second = read_vector(file, "/encoder/adam_second").array();
  r.moments.steps = read_int_attribute(file, "adam_steps");
  r.final_active_units = static_cast<int>(file.read_double_attribute("/", "active_units"));
  return r;
}

}  // namespace spikevi
