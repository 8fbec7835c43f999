// The spike-model catalogue, and the promise of spike_model.hpp: a model defined in one place
// (here, inside this test) is simulated, fitted end to end, checkpointed, restarted and read back
// without any other code knowing it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "spikevi/driver/fit_job.hpp"
#include "spikevi/error.hpp"
#include "spikevi/io/dataset.hpp"
#include "spikevi/io/fit_file.hpp"
#include "spikevi/model/simulation.hpp"
#include "spikevi/model/spike_model.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

TEST(SpikeModelCatalogue, KnowsTheBuiltInModelsByNameAndAlias) {
  const SpikeModelCatalogue& models = builtin_spike_models();
  EXPECT_EQ(models.get("poisson")->name(), "poisson");
  EXPECT_EQ(models.get("negbin")->name(), "negative_binomial");
  EXPECT_EQ(models.get("negative_binomial"), models.get("negbin"));
  EXPECT_EQ(models.get("bernoulli")->name(), "bernoulli");
  EXPECT_EQ(models.find("gamma"), nullptr);
  EXPECT_EQ(models.choices(), "poisson, negbin (negative_binomial), bernoulli or poisson-softplus");
  try {
    (void)models.get("gamma", "--models");
    FAIL() << "an unknown model was found";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "--models must be poisson, negbin (negative_binomial), bernoulli or poisson-softplus "
              "(got 'gamma')");
  }
  EXPECT_TRUE(poisson_spike_model()->has_closed_form());
  ASSERT_EQ(models.get("negbin")->row_parameters().size(), 1u);
  EXPECT_EQ(models.get("negbin")->row_parameters()[0].name, "dispersion");
}

// A spike model of the test's own: counts ~ N(eta, v_n), identity link, one variance v_n per
// neuron learned as a row parameter (log scale). Everything spikevi needs from a model is here.
class GaussianCountObservation final : public ObservationModel {
 public:
  explicit GaussianCountObservation(Eigen::VectorXd variances) : v_(std::move(variances)) {
    if (!(v_.array() > 0).all()) throw NumericalError("gaussian counts: variance must be > 0");
  }
  std::string name() const override { return "gaussian_counts"; }
  // ell = -((x - mu)^2 + s2) / (2v) - log(2 pi v) / 2, g = (x - mu) / v, G = -1 / (2v).
  void expected_log_likelihood(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                               const Eigen::ArrayXXd& s2, Eigen::ArrayXXd& ell, Eigen::ArrayXXd& g,
                               Eigen::ArrayXXd& G) const override {
    const Eigen::ArrayXXd inverse = v_.array().inverse().replicate(1, x.cols());
    ell = -0.5 * ((x - mu).square() + s2) * inverse;
    add_eta_free_terms(x, ell);
    g = (x - mu) * inverse;
    G = -0.5 * inverse;
  }
  void expected_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd&,
                            const Eigen::ArrayXXd&, Eigen::ArrayXXd& d2, Eigen::ArrayXXd& d3,
                            Eigen::ArrayXXd& d4) const override {
    d2 = -v_.array().inverse().replicate(1, x.cols());
    d3 = Eigen::ArrayXXd::Zero(x.rows(), x.cols());
    d4 = d3;
  }
  double log_base_measure(const Eigen::ArrayXXd&) const override { return 0.0; }
  void pointwise(const Eigen::ArrayXXd& x, Eigen::Index col, const Eigen::ArrayXd& eta,
                 PointwiseDerivatives& at) const override {
    const Eigen::ArrayXd inverse = v_.array().inverse();
    if (at.wanted[0]) at.of_order[0] = -0.5 * (x.col(col) - eta).square() * inverse;
    if (at.wanted[1]) at.of_order[1] = (x.col(col) - eta) * inverse;
    if (at.wanted[2]) at.of_order[2] = -inverse;
    for (int k = 3; k < 5; ++k)
      if (at.wanted[k]) at.of_order[k].setZero();
  }
  void add_eta_free_terms(const Eigen::ArrayXXd& x, Eigen::ArrayXXd& ell) const override {
    ell.colwise() -= 0.5 * (2.0 * std::numbers::pi * v_.array()).log();
    (void)x;
  }
  void predicted_mean(const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd&,
                      Eigen::ArrayXXd& mean) const override {
    mean = mu;
  }
  // d/dv and d2/dv2 of sum_t ell: sum (r/(2v^2) - 1/(2v)) and sum (-r/v^3 + 1/(2v^2)), with
  // r = (x - mu)^2 + s2.
  void row_parameter_derivatives(const Eigen::ArrayXXd& x, const Eigen::ArrayXXd& mu,
                                 const Eigen::ArrayXXd& s2, Eigen::MatrixXd& gradient,
                                 Eigen::MatrixXd& curvature) const override {
    const Eigen::ArrayXd r = ((x - mu).square() + s2).rowwise().sum();
    const double bins = static_cast<double>(x.cols());
    const Eigen::ArrayXd v = v_.array();
    gradient = (r / (2.0 * v.square()) - bins / (2.0 * v)).matrix();
    curvature = (-r / v.cube() + bins / (2.0 * v.square())).matrix();
  }

 private:
  Eigen::VectorXd v_;
};

class GaussianCountModel final : public SpikeModel {
 public:
  std::string name() const override { return "gaussian_counts"; }
  std::string description() const override { return "counts ~ N(c.z + d, v_n)"; }
  bool has_closed_form() const override { return true; }
  std::vector<RowParameterSpec> row_parameters() const override {
    RowParameterSpec variance;
    variance.name = "count_variance";
    variance.description = "variance of every neuron's counts";
    variance.label = "count variances v_n";
    variance.prior_median = 1.0;
    variance.prior_sd = 3.0;
    variance.simulation_default = 4.0;
    return {variance};
  }
  std::unique_ptr<ObservationModel> observation(const std::vector<Eigen::VectorXd>& row_values,
                                                bool, int) const override {
    return std::make_unique<GaussianCountObservation>(row_values.at(0));
  }
  Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const override { return eta; }
  Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const override {
    return means.matrix();
  }
  Eigen::VectorXd simulated_offsets(const Eigen::VectorXd& log_expected) const override {
    return log_expected.array().exp().matrix();  // d_n = the expected count itself
  }
  double draw(double mean, const std::vector<double>& row_values,
              RandomStream& stream) const override {
    return std::max(0.0, std::round(mean + std::sqrt(row_values.at(0)) * stream.next_normal()));
  }
  std::uint64_t simulation_code() const override { return 1000; }
};

SpikeModelCatalogue catalogue_with_gaussian_counts() {
  SpikeModelCatalogue models = builtin_spike_models();
  models.add(std::make_shared<GaussianCountModel>());
  return models;
}

TEST(SpikeModelCatalogue, RefusesATakenNameOrSimulationCode) {
  SpikeModelCatalogue models = catalogue_with_gaussian_counts();
  EXPECT_THROW(models.add(std::make_shared<GaussianCountModel>()), ConfigError);
  EXPECT_EQ(models.get("gaussian_counts")->name(), "gaussian_counts");
  EXPECT_EQ(builtin_spike_models().find("gaussian_counts"), nullptr);  // the copy only
}

// About 20 counts per bin with SD 2 (v = 4) around a latent modulation of SD ~3: rounding to
// integers adds a variance of 1/12, so the fitted v_n should be about 4.08.
SimulationSettings gaussian_count_simulation() {
  SimulationSettings s;
  s.observation = "gaussian_counts";
  s.neurons = 30;
  s.latents = 2;
  s.trials = 24;
  s.bins = 80;
  s.mean_rate_hz = 1000.0;  // 20 counts per 20-ms bin
  s.rate_log_sd = 0.1;
  s.readout_scale = 3.0;
  return s;
}

FitJobSettings gaussian_count_job(const std::string& data, const std::string& out, int iterations) {
  FitJobSettings job;
  job.data = data;
  job.out = out;
  job.fit.latents = 2;
  job.fit.iterations = iterations;
  job.fit.tolerance = 0.0;
  job.fit.model.spikes = catalogue_with_gaussian_counts().get("gaussian_counts");
  job.fit.model.expectations = ExpectationMethod::kClosedForm;
  job.checkpoint_every = 4;
  job.identity = {{"observation", "gaussian_counts"}};
  return job;
}

TEST(SpikeModel, AModelDefinedInATestIsSimulatedFittedRestartedAndReadBack) {
  const SpikeModelCatalogue models = catalogue_with_gaussian_counts();
  testing::TempDir dir;
  const Dataset data = simulate(gaussian_count_simulation(), models);
  ASSERT_EQ(data.truth->observation, "gaussian_counts");
  EXPECT_EQ(data.truth->row_parameters.at("count_variance")(0), 4.0);
  write_dataset(dir.file("data.h5"), data);
  const Dataset reread = read_dataset(dir.file("data.h5"), ReadOptions{.spike_models = &models});
  EXPECT_EQ(reread.truth->row_parameters.at("count_variance"),
            data.truth->row_parameters.at("count_variance"));

  SerialCommunicator comm;
  const FitJobResult whole =
      run_fit_job(gaussian_count_job(dir.file("data.h5"), dir.file("whole.h5"), 12), comm);
  ASSERT_EQ(whole.outcome.termination, Termination::kIterationLimit) << whole.outcome.message;
  // Interrupted after 8 iterations (its checkpoint), then continued to 12 by the same job.
  const FitJobResult first =
      run_fit_job(gaussian_count_job(dir.file("data.h5"), dir.file("split.h5"), 8), comm);
  ASSERT_EQ(first.outcome.trace.size(), 8u);
  const FitJobResult rest =
      run_fit_job(gaussian_count_job(dir.file("data.h5"), dir.file("split.h5"), 12), comm);
  ASSERT_EQ(rest.outcome.trace.size(), 12u);

  const FitModel a = read_fit_model(dir.file("whole.h5"), models);
  const FitModel b = read_fit_model(dir.file("split.h5"), models);
  EXPECT_EQ(a.model.spikes->name(), "gaussian_counts");
  ASSERT_EQ(a.globals.spike_parameters.count(), 1u);
  const RowParameter& variance = a.globals.spike_parameters.parameters[0];
  EXPECT_EQ(variance.spec.name, "count_variance");
  // The restart is the uninterrupted fit, bit for bit.
  EXPECT_EQ(variance.values, b.globals.spike_parameters.parameters[0].values);
  EXPECT_EQ(a.globals.spikes.C, b.globals.spikes.C);
  EXPECT_EQ(a.globals.dynamics.M, b.globals.dynamics.M);
  EXPECT_EQ(whole.outcome.elbo, rest.outcome.elbo);
  // The fitted variances recover the simulated 4 + 1/12: each from 19 training trials x 80 bins
  // (relative SE sqrt(2/1520) ~ 3.6 %), their median from 30 neurons (~1 %; measured 4.02, the
  // latents absorbing a little): 0.15 allows 3.7 %; every neuron within 5 SE (18 %).
  Eigen::VectorXd sorted = variance.values;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NEAR(sorted(sorted.size() / 2), 4.0 + 1.0 / 12.0, 0.15);
  EXPECT_GT(sorted(0), 3.35);
  EXPECT_LT(sorted(sorted.size() - 1), 4.8);
  EXPECT_TRUE((variance.precision.array() > 0).all());
  // A program without the model refuses the fit file, naming it.
  try {
    (void)read_fit_model(dir.file("whole.h5"));
    FAIL() << "a fit of an unknown model was read";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("gaussian_counts"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace spikevi
