#include "spikevi/inference/global_statistics.hpp"

#include <cassert>
#include <type_traits>

namespace spikevi {
namespace {

// Appends / reads matrices column-major into / from a flat buffer, in one fixed order.
class Packer {
 public:
  explicit Packer(std::vector<double>& out) : out_(out) {}
  void put(const Eigen::MatrixXd& m) { out_.insert(out_.end(), m.data(), m.data() + m.size()); }
  void put(const Eigen::VectorXd& v) { out_.insert(out_.end(), v.data(), v.data() + v.size()); }
  void put(double x) { out_.push_back(x); }

 private:
  std::vector<double>& out_;
};

class Unpacker {
 public:
  explicit Unpacker(std::span<const double> in) : in_(in) {}
  template <typename Dense>
  void get(Dense& m) {
    assert(offset_ + static_cast<std::size_t>(m.size()) <= in_.size());
    std::copy_n(in_.begin() + static_cast<std::ptrdiff_t>(offset_), m.size(), m.data());
    offset_ += static_cast<std::size_t>(m.size());
  }
  void get(double& x) { x = in_[offset_++]; }
  std::size_t consumed() const { return offset_; }

 private:
  std::span<const double> in_;
  std::size_t offset_ = 0;
};

// Every field in pack order; Stats is GlobalStatistics or const GlobalStatistics.
template <typename Stats, typename Visitor>
void visit_fields(Stats& s, Visitor&& visit) {
  visit(s.transitions.Sxx);
  visit(s.transitions.Syx);
  visit(s.transitions.Syy);
  visit(s.transitions.n);
  visit(s.initial_mean_sum);
  visit(s.initial_second_moment_sum);
  visit(s.trials);
  visit(s.spikes.gradient);
  visit(s.spikes.hessian);
  visit(s.spikes.log_likelihood);
  visit(s.row_parameters.gradient);
  visit(s.row_parameters.curvature);
  visit(s.mlp.A);
  visit(s.mlp.W);
  visit(s.mlp.b);
  visit(s.history.gradient);
  visit(s.history.curvature);
  for (auto& modality : s.continuous) {
    visit(modality.second_moment);
    visit(modality.cross);
    visit(modality.sum_squares);
    visit(modality.observed);
  }
  visit(s.elbo_sum);
  visit(s.spike_count);
  visit(s.candidate_log_likelihood);
  visit(s.local_iterations);
  visit(s.unconverged_trials);
  visit(s.failed_trials);
  visit(s.restarted_trials);
  visit(s.stop_requests);
}

}  // namespace

GlobalStatistics GlobalStatistics::zero(int dim, int neurons, const ModelLayout& layout) {
  GlobalStatistics s;
  s.transitions = TransitionStatistics::zero(dim, layout.inputs);
  s.initial_mean_sum = Eigen::VectorXd::Zero(dim);
  s.initial_second_moment_sum = Eigen::MatrixXd::Zero(dim, dim);
  s.spikes = ReadoutStatistics::zero(neurons, dim);
  const auto row_parameters = static_cast<Eigen::Index>(layout.row_parameters.size());
  s.row_parameters.gradient = Eigen::MatrixXd::Zero(neurons, row_parameters);
  s.row_parameters.curvature = Eigen::MatrixXd::Zero(neurons, row_parameters);
  for (int channels : layout.continuous_channels)
    s.continuous.push_back(RegressionStatistics::zero(channels, dim));
  s.candidate_log_likelihood = Eigen::VectorXd::Zero(neurons);
  s.mlp = MlpGradient::zero(layout.hidden > 0 ? neurons : 0, layout.hidden > 0 ? dim : 0,
                            layout.hidden);
  s.history = HistoryStatistics::zero(neurons, layout.history.features());
  return s;
}

void GlobalStatistics::clear() {
  visit_fields(*this, [](auto& field) {
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, double>)
      field = 0.0;
    else
      field.setZero();
  });
}

void GlobalStatistics::add_trial(const GaussianMoments& q, const Readout& readout,
                                 const ObservationModel& model, const Eigen::ArrayXXd& counts,
                                 double elbo, const Eigen::MatrixXd* inputs,
                                 const MlpKernels* mlp_kernels, HistoryTerms history_terms) {
  transitions.add_trial(q, inputs);
  initial_mean_sum += q.mean.col(0);
  initial_second_moment_sum += q.cov_block(0) + q.mean.col(0) * q.mean.col(0).transpose();
  trials += 1.0;
  Eigen::ArrayXXd mu, s2;
  const bool with_row_parameters = row_parameters.gradient.size() > 0;
  if (!mlp_kernels || with_row_parameters) ReadoutKernels(readout).eta_moments(q, mu, s2);
  assert(!(mlp_kernels && history_terms.offset));
  if (history_terms.offset) {
    mu += *history_terms.offset;
    Eigen::ArrayXXd ell, g, G;
    model.expected_log_likelihood(counts, mu, s2, ell, g, G);
    history.add_trial(*history_terms.features, g, G);
  }
  if (mlp_kernels)
    mlp_kernels->add_statistics(model, counts, q, spikes, mlp);
  else
    spikes.add_trial(readout, model, counts, q, mu, s2);
  if (with_row_parameters) {
    Eigen::MatrixXd gradient, curvature;
    model.row_parameter_derivatives(counts, mu, s2, gradient, curvature);
    row_parameters.gradient += gradient;
    row_parameters.curvature += curvature;
  }
  elbo_sum += elbo;
  spike_count += counts.sum();
}

void GlobalStatistics::add_continuous(std::size_t m, const Eigen::ArrayXXd& values,
                                      const GaussianMoments& q) {
  continuous.at(m).add_trial(values, q);
}

std::vector<double> GlobalStatistics::pack() const {
  std::vector<double> buffer;
  pack_into(buffer);
  return buffer;
}

void GlobalStatistics::pack_into(std::vector<double>& buffer) const {
  buffer.clear();
  Packer packer(buffer);
  visit_fields(*this, [&](const auto& field) { packer.put(field); });
}

void GlobalStatistics::unpack(std::span<const double> buffer) {
  Unpacker unpacker(buffer);
  visit_fields(*this, [&](auto& field) { unpacker.get(field); });
  assert(unpacker.consumed() == buffer.size());
}

}  // namespace spikevi
