#include "spikevi/driver/calibration.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <set>

#include "spikevi/error.hpp"
#include "spikevi/inference/estimator.hpp"
#include "spikevi/inference/likelihood.hpp"
#include "spikevi/inference/variational_family.hpp"
#include "spikevi/math/random_stream.hpp"
#include "spikevi/model/dynamics.hpp"

namespace spikevi {
namespace {

// RandomCounter::iteration of each draw of a replicate (purpose kCalibration; iteration 0 is
// the null samples of the rank test's band). `trial` is the replicate, `inner` the bin or draw.
enum CalibrationCode : std::uint64_t {
  kLatentCode = 1,             // inner 0: the latent path, sequentially
  kCountCode = 2,              // inner = bin: the spike counts of that bin
  kContinuousCode = 3,         // inner = bin: the Gaussian modalities' noise of that bin
  kPosteriorCode = 4,          // inner = draw l: the standard normals of posterior draw l
  kDynamicsCode = 5,           // inner 0: the replicate's dynamics, drawn from the prior
  kDynamicsPosteriorCode = 6,  // inner = draw l: posterior draw l of the dynamics
};

RandomStream replicate_stream(const CalibrationSettings& s, CalibrationCode code, int replicate,
                              std::uint64_t inner = 0) {
  return RandomStream({s.seed, RandomPurpose::kCalibration},
                      {code, static_cast<std::uint64_t>(replicate), inner});
}

Eigen::MatrixXd lower_factor(const Eigen::MatrixXd& covariance, const char* what) {
  Eigen::LLT<Eigen::MatrixXd> llt(covariance);
  if (llt.info() != Eigen::Success)
    throw NumericalError(std::string("sbc: ") + what + " is not positive definite");
  return llt.matrixL();
}

// The dynamics a replicate is simulated with: theta's, or a draw from the dynamics prior.
struct ReplicateDynamics {
  Eigen::MatrixXd A, Q;
  Eigen::VectorXd b;
};

ReplicateDynamics replicate_dynamics(const CalibrationModel& m, const CalibrationSettings& s,
                                     int r) {
  if (!s.dynamics_prior) return {m.A, m.Q, m.b};
  RandomStream stream = replicate_stream(s, kDynamicsCode, r);
  const MatrixNormalInverseWishart::Draw draw = s.dynamics_prior->draw(stream);
  return {draw.At.leftCols(m.dim()), draw.Q, draw.At.col(m.dim())};
}

bool grows(const Eigen::MatrixXd& A) {
  return Eigen::EigenSolver<Eigen::MatrixXd>(A, false).eigenvalues().cwiseAbs().maxCoeff() >= 1.0;
}

struct Replicate {
  Eigen::MatrixXd latents;                  // D x T
  Eigen::ArrayXXd counts;                   // N x T
  std::vector<Eigen::ArrayXXd> continuous;  // channels x T each
};

Replicate simulate_replicate(const CalibrationModel& m, const ReplicateDynamics& dynamics,
                             const CalibrationSettings& s, int r) {
  const int dim = m.dim(), bins = s.bins;
  Replicate out;
  RandomStream latent_stream = replicate_stream(s, kLatentCode, r);
  auto normals = [&](RandomStream& stream, Eigen::Index size) {
    Eigen::VectorXd v(size);
    for (Eigen::Index i = 0; i < size; ++i) v(i) = stream.next_normal();
    return v;
  };
  const Eigen::MatrixXd initial = lower_factor(m.Sigma0, "Sigma0");
  const Eigen::MatrixXd noise = lower_factor(dynamics.Q, "Q");
  out.latents.resize(dim, bins);
  out.latents.col(0) = m.mu0 + initial * normals(latent_stream, dim);
  for (int t = 1; t < bins; ++t)
    out.latents.col(t) =
        dynamics.A * out.latents.col(t - 1) + dynamics.b + noise * normals(latent_stream, dim);

  Eigen::MatrixXd eta = m.spikes.C * out.latents;
  eta.colwise() += m.spikes.d;
  const Eigen::ArrayXXd means = m.spike_model->mean_of(eta.array());
  out.counts.resize(means.rows(), bins);
  std::vector<double> row_values(m.row_parameters.parameters.size());
  for (int t = 0; t < bins; ++t) {
    RandomStream stream = replicate_stream(s, kCountCode, r, static_cast<std::uint64_t>(t));
    for (Eigen::Index n = 0; n < means.rows(); ++n) {
      for (std::size_t p = 0; p < row_values.size(); ++p)
        row_values[p] = m.row_parameters.parameters[p].values(n);
      out.counts(n, t) = m.spike_model->draw(means(n, t), row_values, stream);
    }
  }
  for (const GaussianModality& modality : m.continuous) {
    Eigen::MatrixXd y = modality.readout.C * out.latents;
    y.colwise() += modality.readout.d;
    out.continuous.push_back(y.array());
  }
  for (int t = 0; t < bins && !m.continuous.empty(); ++t) {
    RandomStream stream = replicate_stream(s, kContinuousCode, r, static_cast<std::uint64_t>(t));
    for (std::size_t k = 0; k < m.continuous.size(); ++k)
      for (Eigen::Index j = 0; j < out.continuous[k].rows(); ++j)
        out.continuous[k](j, t) += std::sqrt(m.continuous[k].variances(j)) * stream.next_normal();
  }
  return out;
}

// The number of the L draws below each monitored truth: z_l = m + sqrt(inflation) L^-T eps_l
// (Gauss-Markov) or m + sqrt(inflation s2) eps_l (mean-field), offsets from `family`'s last
// factorisation.
void rank_replicate(const CalibrationSettings& s, const std::vector<int>& bins, int r,
                    const Eigen::MatrixXd& truth, const Eigen::MatrixXd& mean,
                    const FamilyEvaluator& family, std::int64_t* ranks) {
  const auto dim = truth.rows();
  const double scale = std::sqrt(s.variance_inflation);
  Eigen::MatrixXd eps(dim, truth.cols());
  std::fill(ranks, ranks + bins.size() * static_cast<std::size_t>(dim), 0);
  for (int l = 0; l < s.draws; ++l) {
    RandomStream stream = replicate_stream(s, kPosteriorCode, r, static_cast<std::uint64_t>(l));
    for (Eigen::Index i = 0; i < eps.size(); ++i) eps.data()[i] = stream.next_normal();
    const Eigen::MatrixXd offsets = family.sample_offsets(eps);
    std::size_t k = 0;
    for (int t : bins)
      for (Eigen::Index i = 0; i < dim; ++i, ++k)
        if (mean(i, t) + scale * offsets(i, t) < truth(i, t)) ++ranks[k];
  }
}

// The number of the L draws from q(A~, Q) below each true entry of [A b] (to `dynamics`) and of
// Q's lower triangle (to `noise`); widened like the latents' draws, about the posterior means.
void rank_dynamics(const CalibrationSettings& s, int r, const ReplicateDynamics& truth,
                   const MatrixNormalInverseWishart& q, std::int64_t* dynamics,
                   std::int64_t* noise) {
  const int dim = q.dim();
  const double scale = std::sqrt(s.variance_inflation);
  const Eigen::MatrixXd mean_Q = q.mean_Q();
  std::fill(dynamics, dynamics + dim * (dim + 1), 0);
  std::fill(noise, noise + dim * (dim + 1) / 2, 0);
  for (int l = 0; l < s.draws; ++l) {
    RandomStream stream =
        replicate_stream(s, kDynamicsPosteriorCode, r, static_cast<std::uint64_t>(l));
    const MatrixNormalInverseWishart::Draw draw = q.draw(stream);
    const Eigen::MatrixXd At = q.M + scale * (draw.At - q.M);
    const Eigen::MatrixXd Q = mean_Q + scale * (draw.Q - mean_Q);
    std::size_t k = 0;
    for (int j = 0; j <= dim; ++j)
      for (int i = 0; i < dim; ++i, ++k)
        if (At(i, j) < (j < dim ? truth.A(i, j) : truth.b(i))) ++dynamics[k];
    k = 0;
    for (int j = 0; j < dim; ++j)
      for (int i = j; i < dim; ++i, ++k)
        if (Q(i, j) < truth.Q(i, j)) ++noise[k];
  }
}

void validate(const CalibrationModel& m, const CalibrationSettings& s) {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw ConfigError(message);
  };
  require(s.replicates >= 1,
          "--replicates must be >= 1 (got " + std::to_string(s.replicates) + ")");
  require(s.draws >= 1, "--draws must be >= 1 (got " + std::to_string(s.draws) + ")");
  require(s.bins >= 2, "--trial-bins must be >= 2 (got " + std::to_string(s.bins) + ")");
  require(std::isfinite(s.variance_inflation) && s.variance_inflation > 0,
          "--widen must be finite and > 0 (got " + std::to_string(s.variance_inflation) + ")");
  require(m.dim() >= 1 && m.spike_model != nullptr, "sbc: the model has no latents or spike model");
  if (s.dynamics_prior) {
    const MatrixNormalInverseWishart& prior = *s.dynamics_prior;
    require(prior.dim() == m.dim() && prior.inputs() == 0,
            "sbc: the dynamics prior must be D x (D + 1) = " + std::to_string(m.dim()) + " x " +
                std::to_string(m.dim() + 1) + " (no inputs)");
    require(prior.nu > m.dim() + 1, "sbc: the dynamics prior's nu0 must exceed D + 1 = " +
                                        std::to_string(m.dim() + 1) + " (--dynamics-prior-dof)");
    require(s.dynamics_sweeps >= 1,
            "--dynamics-sweeps must be >= 1 (got " + std::to_string(s.dynamics_sweeps) + ")");
    require(std::isfinite(s.dynamics_tolerance) && s.dynamics_tolerance >= 0,
            "sbc: the dynamics tolerance must be finite and >= 0");
  }
}

// Replicate r's posterior: q(z) at theta's dynamics (the local step), or with a dynamics prior
// q(z) q(A~, Q) by VB-EM from q(A~, Q) = prior.
struct ReplicatePosterior {
  GaussMarkovState latents;
  bool latents_converged = true;
  std::optional<MatrixNormalInverseWishart> dynamics;
  bool dynamics_converged = true;
  bool dynamics_monotone = true;  // no sweep lowered the ELBO by more than the stopping rule
  double largest_decrease = 0.0;  // nats
};

ReplicatePosterior infer_replicate(const CalibrationModel& m, const CalibrationSettings& s,
                                   const PriorBlocks& fixed_prior,
                                   const std::vector<ModalityView>& modalities,
                                   FamilyEvaluator& family, Estimator& estimator) {
  ReplicatePosterior out;
  const int dim = m.dim();
  if (!s.dynamics_prior) {
    const LocalProblem problem{fixed_prior, modalities, family, estimator};
    problem.evaluate(Sites::zero(dim, s.bins), out.latents);
    out.latents_converged = cvi_local_step(problem, out.latents, s.local).converged;
    problem.evaluate(out.latents.sites, out.latents);  // the factor of the final sites
    return out;
  }
  const MatrixNormalInverseWishart& prior = *s.dynamics_prior;
  MatrixNormalInverseWishart q = prior;
  out.latents.sites = Sites::zero(dim, s.bins);
  double previous = -std::numeric_limits<double>::infinity();
  out.dynamics_converged = false;
  for (int sweep = 0;; ++sweep) {
    const PriorBlocks blocks = prior_blocks(q.expectations(), m.mu0, m.Sigma0, s.bins);
    const LocalProblem problem{blocks, modalities, family, estimator};
    warm_start(problem, out.latents);  // the last sweep's sites, or zero sites if invalid here
    out.latents_converged = cvi_local_step(problem, out.latents, s.local).converged;
    problem.evaluate(out.latents.sites, out.latents);  // the factor of the final sites
    // The ELBO of q(z) q(A~, Q) (DESIGN.md §3): the local step and the conjugate update can
    // only raise it, up to the local step's own tolerance, which bounds the stopping rule too.
    const double elbo = out.latents.elbo - q.kl_divergence(prior);
    const double gain = elbo - previous;
    const double threshold =
        std::max(s.dynamics_tolerance * std::abs(elbo), 3.0 * s.local.tolerance);
    if (gain < -threshold) out.dynamics_monotone = false;
    out.largest_decrease = std::max(out.largest_decrease, -gain);
    if (gain <= threshold) out.dynamics_converged = true;
    // Stop with q(z) fitted to the q(A~, Q) returned, converged or at the sweep limit.
    if (out.dynamics_converged || sweep + 1 >= s.dynamics_sweeps) break;
    previous = elbo;
    TransitionStatistics statistics = TransitionStatistics::zero(dim);
    statistics.add_trial(out.latents.moments);
    q = MatrixNormalInverseWishart::blend(q, prior, statistics, 1.0, 1.0);
  }
  out.dynamics = q;
  return out;
}

}  // namespace

CalibrationModel CalibrationModel::from_truth(const Truth& truth,
                                              const SpikeModelCatalogue& models) {
  CalibrationModel m;
  m.A = truth.A;
  m.b = truth.b;
  m.Q = truth.Q;
  m.mu0 = truth.mu0;
  m.Sigma0 = truth.Sigma0;
  m.spikes.C = truth.C;
  m.spikes.d = truth.d;
  m.spike_model = models.get(truth.observation);
  m.row_parameters =
      RowParameters::at_prior(m.spike_model->row_parameters(), static_cast<int>(truth.C.rows()));
  for (RowParameter& parameter : m.row_parameters.parameters)
    parameter.values = truth.row_parameters.at(parameter.spec.name);
  for (const auto& [name, readout] : truth.continuous) {
    GaussianModality modality{name, {}, readout.R};
    modality.readout.C = readout.W;
    modality.readout.d = readout.e;
    m.continuous.push_back(std::move(modality));
  }
  return m;
}

CalibrationModel CalibrationModel::from_fit(const GlobalState& globals,
                                            const ModelSettings& model) {
  CalibrationModel m;
  const int dim = globals.dim();
  m.A = globals.dynamics.mean_A();
  m.b = globals.dynamics.mean_b();
  m.Q = globals.dynamics.mean_Q();
  m.mu0 = globals.mu0;
  m.Sigma0 = globals.Sigma0;
  m.spikes = globals.spikes;
  m.spike_model = model.spikes;
  m.row_parameters = globals.spike_parameters;
  for (const ContinuousReadout& readout : globals.continuous)
    m.continuous.push_back({readout.name, readout.readout, readout.variances});
  if (m.A.rows() != dim) throw InputError("sbc: the fit's dynamics do not match its latents");
  return m;
}

MatrixNormalInverseWishart CalibrationModel::dynamics_prior(double scale,
                                                            double degrees_of_freedom) const {
  const int d = dim();
  if (!(std::isfinite(scale) && scale > 0))
    throw ConfigError("--dynamics-prior-scale must be finite and > 0 (got " +
                      std::to_string(scale) + ")");
  if (!(std::isfinite(degrees_of_freedom) && degrees_of_freedom > d + 1))
    throw ConfigError("--dynamics-prior-dof must exceed D + 1 = " + std::to_string(d + 1) +
                      " (got " + std::to_string(degrees_of_freedom) + ")");
  MatrixNormalInverseWishart prior;
  prior.M.resize(d, d + 1);
  prior.M << A, b;
  prior.V = scale * Eigen::MatrixXd::Identity(d + 1, d + 1);
  prior.nu = degrees_of_freedom;
  prior.Psi = (degrees_of_freedom - d - 1) * Q;
  return prior;
}

std::vector<int> monitored_bins(const CalibrationSettings& s) {
  std::vector<int> bins = s.monitored_bins;
  if (bins.empty())
    for (int j = 0; j < 5; ++j)
      bins.push_back(std::min(s.bins - 1, static_cast<int>(std::lround((j + 0.5) * s.bins / 5.0))));
  std::set<int> seen;
  for (int t : bins) {
    if (t < 0 || t >= s.bins)
      throw ConfigError("--monitor-bins: bin " + std::to_string(t) + " is outside 0.." +
                        std::to_string(s.bins - 1) + " (--trial-bins " + std::to_string(s.bins) +
                        ")");
    if (!seen.insert(t).second)
      throw ConfigError("--monitor-bins names bin " + std::to_string(t) + " twice");
  }
  return bins;
}

CalibrationResult run_calibration(const CalibrationModel& m, const CalibrationSettings& s,
                                  Communicator& comm, const CalibrationProgress& progress) {
  validate(m, s);
  const std::vector<int> bins = monitored_bins(s);
  const int dim = m.dim();
  const auto scalars = static_cast<Eigen::Index>(bins.size()) * dim;

  // The inference model: the dynamics at point values, the spike model's deterministic
  // expectations, the chosen family.
  const ModelSettings model = ModelSettings::for_model(m.spike_model, s.family);
  const std::unique_ptr<ObservationModel> spike_likelihood =
      model.spike_observation(m.row_parameters);
  const ReadoutKernels spike_kernels(m.spikes);
  std::vector<GaussianObservation> gaussian;
  std::vector<std::unique_ptr<ReadoutKernels>> gaussian_kernels;
  for (const GaussianModality& modality : m.continuous) {
    gaussian.emplace_back(modality.variances);
    gaussian_kernels.push_back(std::make_unique<ReadoutKernels>(modality.readout));
  }
  const PriorBlocks fixed_prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, s.bins);
  const std::unique_ptr<FamilyEvaluator> family = make_family_evaluator(s.family);
  DeterministicEstimator estimator(model.expectations);

  // One row per replicate: the latents' ranks, then (with a dynamics prior) those of [A b] and
  // of Q. Replicate r on rank r mod P; the rest of the table stays zero here.
  const Eigen::Index dynamics_scalars = s.dynamics_prior ? dim * (dim + 1) : 0;
  const Eigen::Index noise_scalars = s.dynamics_prior ? dim * (dim + 1) / 2 : 0;
  const Eigen::Index columns = scalars + dynamics_scalars + noise_scalars;
  Eigen::MatrixXd table = Eigen::MatrixXd::Zero(s.replicates, columns);
  // elbo, spikes, unconverged local steps, failed replicates, unconverged VB-EM, unstable A,
  // non-monotone VB-EM
  std::vector<double> totals(7, 0.0);
  double largest_decrease = 0.0;
  std::vector<std::int64_t> ranks(static_cast<std::size_t>(columns));
  const int share = (s.replicates - comm.rank() + comm.size() - 1) / comm.size();
  int done = 0;
  std::string failure;  // this rank's first failed replicate, if any
  const std::clock_t cpu_start = std::clock();
  for (int r = comm.rank(); r < s.replicates && failure.empty(); r += comm.size()) {
    try {
      const ReplicateDynamics dynamics = replicate_dynamics(m, s, r);
      const Replicate data = simulate_replicate(m, dynamics, s, r);
      std::vector<ModalityView> modalities{
          ModalityView{spike_likelihood.get(), &spike_kernels, &data.counts,
                       spike_likelihood->log_base_measure(data.counts)}};
      for (std::size_t k = 0; k < gaussian.size(); ++k)
        modalities.push_back(
            ModalityView{&gaussian[k], gaussian_kernels[k].get(), &data.continuous[k], 0.0});
      const ReplicatePosterior posterior =
          infer_replicate(m, s, fixed_prior, modalities, *family, estimator);
      rank_replicate(s, bins, r, data.latents, posterior.latents.moments.mean, *family,
                     ranks.data());
      if (posterior.dynamics)
        rank_dynamics(s, r, dynamics, *posterior.dynamics, ranks.data() + scalars,
                      ranks.data() + scalars + dynamics_scalars);
      for (Eigen::Index k = 0; k < columns; ++k)
        table(r, k) = static_cast<double>(ranks[static_cast<std::size_t>(k)]);
      totals[0] += posterior.latents.elbo;
      totals[1] += data.counts.sum();
      totals[2] += posterior.latents_converged ? 0.0 : 1.0;
      totals[4] += posterior.dynamics_converged ? 0.0 : 1.0;
      totals[5] += s.dynamics_prior && grows(dynamics.A) ? 1.0 : 0.0;
      totals[6] += posterior.dynamics_monotone ? 0.0 : 1.0;
      largest_decrease = std::max(largest_decrease, posterior.largest_decrease);
    } catch (const Error& error) {
      failure = "sbc: replicate " + std::to_string(r) + ": " + error.what() +
                (s.dynamics_prior ? " (its dynamics were drawn from the prior: a smaller "
                                    "--dynamics-prior-scale draws fewer that explode)"
                                  : "");
      totals[3] += 1.0;
    }
    if (progress) progress(++done, share);
  }
  // This rank's processor time in its replicates, before any wait for the others.
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::vector<double> cpu_max{cpu, largest_decrease};
  comm.allreduce_max(cpu_max);
  totals.push_back(cpu);
  comm.allreduce_sum(std::span<double>(table.data(), static_cast<std::size_t>(table.size())));
  comm.allreduce_sum(totals);
  // Every rank throws when any failed, so none waits in a later collective.
  if (totals[3] > 0)
    throw NumericalError(failure.empty() ? "sbc: a replicate failed on another rank" : failure);

  CalibrationResult result;
  result.latent_ranks = table.leftCols(scalars).cast<std::int64_t>();
  for (int t : bins)
    for (int i = 0; i < dim; ++i)
      result.latent_names.push_back("z[trial 0, bin " + std::to_string(t) + ", dim " +
                                    std::to_string(i) + "]");
  result.elbo = totals[0];
  result.spikes = totals[1];
  result.unconverged_local_steps = static_cast<int>(totals[2]);
  result.unconverged_dynamics = static_cast<int>(totals[4]);
  result.unstable_dynamics = static_cast<int>(totals[5]);
  result.cpu_seconds_max = cpu_max[0];
  result.non_monotone_dynamics = static_cast<int>(totals[6]);
  result.largest_dynamics_decrease = cpu_max[1];
  result.cpu_seconds_total = totals[7];
  if (s.dynamics_prior) {
    result.dynamics_ranks = table.middleCols(scalars, dynamics_scalars).cast<std::int64_t>();
    result.noise_ranks = table.rightCols(noise_scalars).cast<std::int64_t>();
    for (int j = 0; j <= dim; ++j)
      for (int i = 0; i < dim; ++i)
        result.dynamics_names.push_back(j < dim ? "A[" + std::to_string(i) + "," +
                                                      std::to_string(j) + "]"
                                                : "b[" + std::to_string(i) + "]");
    for (int j = 0; j < dim; ++j)
      for (int i = j; i < dim; ++i)
        result.noise_names.push_back("Q[" + std::to_string(i) + "," + std::to_string(j) + "]");
  }
  return result;
}

}  // namespace spikevi
