// The encoder of amortised inference: its shapes, PSD sites, its hand-written
// backpropagation against central finite differences of the network's outputs, and its
// prediction path against the training path.
#include <gtest/gtest.h>

#include <random>

#include "spikevi/error.hpp"
#include "spikevi/inference/site_encoder.hpp"

namespace spikevi {
namespace {

Eigen::ArrayXXd random_counts(int neurons, int bins, std::mt19937_64& rng) {
  std::poisson_distribution<int> poisson(1.2);
  Eigen::ArrayXXd counts(neurons, bins);
  for (Eigen::Index i = 0; i < counts.size(); ++i) counts.data()[i] = poisson(rng);
  return counts;
}

// f(sites) = sum A .* l + sum_t sum_i B_it L_t,ii: linear in the sites, so df/dsites = (A, B).
double linear_objective(const Sites& sites, const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
  const auto d = static_cast<int>(A.rows());
  double f = sites.shift.cwiseProduct(A).sum();
  for (int t = 0; t < sites.bins(); ++t)
    for (int i = 0; i < d; ++i) f += B(i, t) * sites.precision(i, Eigen::Index{t} * d + i);
  return f;
}

TEST(SiteEncoder, SitesHaveTheTrialsShapeAndDiagonalPositivePrecisions) {
  std::mt19937_64 rng(3);
  const EncoderShape shape{.inputs = 6, .hidden = 5, .window = 3, .latents = 2};
  const SiteEncoder encoder(shape, 11);
  EXPECT_EQ(encoder.parameters().size(), 5 * 6 * 3 + 5 + 2 * (2 * 5 + 2));
  const Sites sites = encoder.encode(random_counts(6, 9, rng));
  ASSERT_EQ(sites.shift.rows(), 2);
  ASSERT_EQ(sites.shift.cols(), 9);
  ASSERT_EQ(sites.precision.cols(), 18);
  for (int t = 0; t < 9; ++t) {
    EXPECT_GT(sites.precision(0, 2 * t), 0.0);
    EXPECT_GT(sites.precision(1, 2 * t + 1), 0.0);
    EXPECT_EQ(sites.precision(0, 2 * t + 1), 0.0);
    EXPECT_EQ(sites.precision(1, 2 * t), 0.0);
  }
  // Same seed, same weights; a different seed, different ones.
  EXPECT_EQ(SiteEncoder(shape, 11).parameters(), encoder.parameters());
  EXPECT_NE(SiteEncoder(shape, 12).parameters(), encoder.parameters());
}

TEST(SiteEncoder, AnInputOutsideTheWindowDoesNotMoveASite) {
  std::mt19937_64 rng(4);
  const EncoderShape shape{.inputs = 3, .hidden = 4, .window = 3, .latents = 2};
  const SiteEncoder encoder(shape, 5);
  Eigen::ArrayXXd counts = random_counts(3, 10, rng);
  const Sites before = encoder.encode(counts);
  counts(1, 7) += 5.0;  // bins 6..8 see bin 7
  const Sites after = encoder.encode(counts);
  for (int t = 0; t < 10; ++t) {
    const bool sees = t >= 6 && t <= 8;
    EXPECT_EQ(sees, (after.shift.col(t) - before.shift.col(t)).norm() > 0.0) << "bin " << t;
  }
}

TEST(SiteEncoder, BackpropagationMatchesFiniteDifferences) {
  std::mt19937_64 rng(5);
  const EncoderShape shape{.inputs = 4, .hidden = 3, .window = 5, .latents = 2};
  SiteEncoder encoder(shape, 7, 0.7);
  // Move the weights off their initial values (b = 0) so every path is exercised.
  std::normal_distribution<double> normal(0.0, 0.3);
  Eigen::VectorXd weights = encoder.parameters();
  for (Eigen::Index i = 0; i < weights.size(); ++i) weights(i) += normal(rng);
  encoder.set_parameters(weights);
  const Eigen::ArrayXXd counts = random_counts(4, 8, rng);
  Eigen::MatrixXd A(2, 8), B(2, 8);
  for (Eigen::Index i = 0; i < A.size(); ++i) A.data()[i] = normal(rng), B.data()[i] = normal(rng);

  EncoderPass pass;
  const Sites sites = encoder.encode(counts, pass);
  Sites site_gradient;
  site_gradient.shift = A;
  site_gradient.precision = Eigen::MatrixXd::Zero(2, 16);
  for (int t = 0; t < 8; ++t) site_gradient.precision.block(0, 2 * t, 2, 2) = B.col(t).asDiagonal();
  site_gradient.precision(0, 2 * 3 + 1) = 100.0;  // off-diagonal entries are ignored
  Eigen::VectorXd gradient;
  encoder.backward(pass, site_gradient, gradient);

  const double h = 1e-6;
  for (Eigen::Index i = 0; i < weights.size(); ++i) {
    Eigen::VectorXd plus = weights, minus = weights;
    plus(i) += h;
    minus(i) -= h;
    const double fd = (linear_objective(SiteEncoder(shape, plus).encode(counts), A, B) -
                       linear_objective(SiteEncoder(shape, minus).encode(counts), A, B)) /
                      (2 * h);
    // Central differences of a smooth function of O(1) values: error O(h^2) + O(eps / h).
    EXPECT_NEAR(gradient(i), fd, 1e-7 * (1.0 + std::abs(fd))) << "weight " << i;
  }
  // backward() adds: a second call doubles the gradient.
  Eigen::VectorXd twice = gradient;
  encoder.backward(pass, site_gradient, twice);
  EXPECT_LT((twice - 2.0 * gradient).cwiseAbs().maxCoeff(), 1e-12);
}

// predict_sites (sparse convolution, vectorised tanh and softplus) against encode() (the
// training path) on weights moved off their initial values: the same sites up to rounding.
// Each hidden unit sums N (2w + 1) <= 60 terms of O(1); reassociating them and a few-ulp tanh
// move a_t by ~1e-15, the O(1) sites by a few 1e-15; 1e-13 leaves room without hiding a bug
// (a missing or doubled term moves a site by ~0.1).
TEST(SiteEncoder, PredictionPathGivesTheTrainingPathsSites) {
  std::mt19937_64 rng(6);
  std::normal_distribution<double> normal(0.0, 0.5);
  for (const int hidden : {8, 16, 32, 64, 5})  // the register-blocked widths and a dynamic one
    for (const int window : {1, 3, 5}) {
      const EncoderShape shape{.inputs = 12, .hidden = hidden, .window = window, .latents = 3};
      SiteEncoder encoder(shape, 9);
      Eigen::VectorXd weights = encoder.parameters();
      for (Eigen::Index i = 0; i < weights.size(); ++i) weights(i) += normal(rng);
      encoder.set_parameters(weights);
      Eigen::ArrayXXd counts = random_counts(12, 23, rng);  // 23 bins: odd chunk tails
      counts(0, 0) = 70.0;                                  // beyond the log1p table
      counts(1, 2) = 0.5;                                   // not an integer
      counts.col(5).setZero();                              // a silent bin
      const Sites training = encoder.encode(counts);
      EncoderScratch scratch;
      Sites predicted;
      for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the scratch
        encoder.predict_sites(counts, scratch, predicted);
        ASSERT_EQ(predicted.shift.rows(), 3);
        ASSERT_EQ(predicted.shift.cols(), 23);
        ASSERT_EQ(predicted.precision.cols(), 69);
        const double shift_error = (predicted.shift - training.shift).cwiseAbs().maxCoeff();
        const double precision_error = ((predicted.precision - training.precision).array() /
                                        (1.0 + training.precision.array().abs()))
                                           .abs()
                                           .maxCoeff();
        EXPECT_LT(shift_error, 1e-13) << "H " << hidden << ", window " << window;
        EXPECT_LT(precision_error, 1e-13) << "H " << hidden << ", window " << window;
        EXPECT_GT(training.shift.cwiseAbs().maxCoeff(), 0.1);  // the sites are not trivial
      }
      for (int t = 0; t < 23; ++t)  // the precisions stay exactly diagonal
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j)
            if (i != j) EXPECT_EQ(predicted.precision(i, 3 * t + j), 0.0);
    }
}

TEST(SiteEncoder, RefusesUnusableShapesAndMismatchedInputs) {
  EXPECT_THROW(SiteEncoder(EncoderShape{.inputs = 3, .hidden = 0, .window = 3, .latents = 1}, 1),
               ConfigError);
  EXPECT_THROW(SiteEncoder(EncoderShape{.inputs = 3, .hidden = 2, .window = 4, .latents = 1}, 1),
               ConfigError);
  const SiteEncoder encoder(EncoderShape{.inputs = 3, .hidden = 2, .window = 3, .latents = 1}, 1);
  EXPECT_THROW(encoder.encode(Eigen::ArrayXXd::Zero(4, 5)), InputError);
  EXPECT_THROW(encoder.predict_sites(Eigen::ArrayXXd::Zero(4, 5)), InputError);
  SiteEncoder copy = encoder;
  EXPECT_THROW(copy.set_parameters(Eigen::VectorXd::Zero(3)), InputError);
}

}  // namespace
}  // namespace spikevi
