// The amortised part of a fit file: a round trip of the encoder section, and the gauge map of
// the encoder's sites (q from gauged sites under the gauged prior is the gauged q).
#include <gtest/gtest.h>

#include <random>

#include "spikevi/inference/gauss_markov.hpp"
#include "spikevi/io/encoder_file.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

TEST(EncoderFile, GaugedSitesUnderTheGaugedPriorGiveTheGaugedPosterior) {
  const int D = 2, T = 7;
  std::mt19937_64 rng(6);
  const testing::LinearGaussianModel m = testing::random_linear_gaussian_model(D, 2, rng);
  AffineGauge gauge;
  gauge.M = testing::random_normal(D, D, rng) + 2.0 * Eigen::MatrixXd::Identity(D, D);
  gauge.v = testing::random_normal(D, 1, rng);
  const Eigen::MatrixXd inverse = gauge.M.inverse();
  const Eigen::MatrixXd A = gauge.M * m.A * inverse;
  const Eigen::VectorXd b = gauge.M * m.b + gauge.v - A * gauge.v;
  const PriorBlocks prior =
      prior_blocks(DynamicsExpectations::point(m.A, m.b, m.Q), m.mu0, m.Sigma0, T);
  const PriorBlocks gauged_prior =
      prior_blocks(DynamicsExpectations::point(A, b, gauge.M * m.Q * gauge.M.transpose()),
                   gauge.M * m.mu0 + gauge.v, gauge.M * m.Sigma0 * gauge.M.transpose(), T);
  const Sites sites = testing::random_sites(D, T, rng, 1.0);
  GaussMarkovEvaluator family;
  GaussMarkovState q, gauged_q;
  family.evaluate(prior, {}, sites, testing::exact_expectations(), q);
  family.evaluate(gauged_prior, {}, gauge_sites(sites, gauge), testing::exact_expectations(),
                  gauged_q);
  const GaussianMoments expected = gauge.apply(q.moments);
  EXPECT_LT(testing::max_abs_diff(gauged_q.moments.mean, expected.mean), 1e-9);
  EXPECT_LT(testing::max_abs_diff(gauged_q.moments.cov, expected.cov), 1e-9);
}

TEST(EncoderFile, TheSectionRoundTrips) {
  testing::TempDir dir;
  const std::string path = dir.file("fit.h5");
  Hdf5File::create(path).close();
  EncoderRecord record;
  record.encoder =
      SiteEncoder(EncoderShape{.inputs = 3, .hidden = 4, .window = 3, .latents = 2}, 9);
  record.input_neurons = {0, 2, 5};
  record.gauge.M = Eigen::MatrixXd::Identity(2, 2) * 2.0;
  record.gauge.v = Eigen::VectorXd::Ones(2);
  record.beta = {0.5, 1.0};
  record.kl_per_dimension = Eigen::MatrixXd::Ones(2, 2);
  record.active_units = {1, 2};
  record.final_kl_per_dimension = Eigen::VectorXd::Ones(2);
  record.final_mean_variance = Eigen::VectorXd::Ones(2);
  record.final_active_units = 2;
  write_encoder(path, record);
  const std::optional<EncoderRecord> back = read_encoder(path);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->encoder.parameters(), record.encoder.parameters());
  EXPECT_EQ(back->input_neurons, record.input_neurons);
  EXPECT_EQ(back->gauge.M, record.gauge.M);
  EXPECT_EQ(back->final_active_units, 2);
  Eigen::ArrayXXd counts = Eigen::ArrayXXd::Constant(6, 5, 1.0);
  EXPECT_LT(testing::max_abs_diff(back->encode(counts).shift, record.encode(counts).shift), 1e-15);
}

}  // namespace
}  // namespace spikevi
