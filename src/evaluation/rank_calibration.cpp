#include "spikevi/evaluation/rank_calibration.hpp"

#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

// The tails P(X <= k) and P(X >= k) of X ~ Binomial(n, p), tabulated once on the window of
// k within 13 standard deviations of the mean (the mass outside it is below 1e-35), by
// summing the probabilities exp(log pmf) from each end, so both tails keep their relative
// accuracy far out.
class BinomialTails {
 public:
  BinomialTails(int n, double p) {
    const double sd = std::sqrt(n * p * (1 - p));
    lo_ = std::max(0, static_cast<int>(std::floor(n * p - 13 * sd - 1)));
    hi_ = std::min(n, static_cast<int>(std::ceil(n * p + 13 * sd + 1)));
    const auto size = static_cast<std::size_t>(hi_ - lo_ + 1);
    std::vector<double> pmf(size);
    for (int k = lo_; k <= hi_; ++k)
      pmf[static_cast<std::size_t>(k - lo_)] =
          std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) +
                   k * std::log(p) + (n - k) * std::log1p(-p));
    at_most_.resize(size);
    at_least_.resize(size);
    double sum = 0;
    for (std::size_t i = 0; i < size; ++i) at_most_[i] = sum += pmf[i];
    sum = 0;
    for (std::size_t i = size; i-- > 0;) at_least_[i] = sum += pmf[i];
  }
  double at_most(int k) const {
    if (k < lo_) return 0.0;
    if (k >= hi_) return 1.0;
    return std::min(1.0, at_most_[static_cast<std::size_t>(k - lo_)]);
  }
  double at_least(int k) const {
    if (k <= lo_) return 1.0;
    if (k > hi_) return 0.0;
    return std::min(1.0, at_least_[static_cast<std::size_t>(k - lo_)]);
  }
  // Two-sided tail probability of k, at most 1.
  double two_sided(int k) const { return std::min(1.0, 2.0 * std::min(at_most(k), at_least(k))); }
  // The smallest k with P(X <= k) >= q, and the largest k with P(X >= k) >= q.
  int lower_quantile(double q) const {
    int k = lo_;
    while (k < hi_ && at_most(k) < q) ++k;
    return k;
  }
  int upper_quantile(double q) const {
    int k = hi_;
    while (k > lo_ && at_least(k) < q) --k;
    return k;
  }

 private:
  int lo_ = 0, hi_ = 0;
  std::vector<double> at_most_, at_least_;
};

// The tails of N F(z_i) at every grid point z_i = i / (L+1), i = 1..L, for N uniform ranks.
std::vector<BinomialTails> grid_tails(int count, int draws) {
  std::vector<BinomialTails> tails;
  for (int i = 1; i <= draws; ++i) tails.emplace_back(count, static_cast<double>(i) / (draws + 1));
  return tails;
}

// The adjusted level gamma of the simultaneous band (Säilynoja et al. 2022, the simulation
// method): under the null, the smallest two-sided binomial tail probability of the ECDF over
// the grid falls below gamma with probability 1 - level. The null draws are `count`
// discrete-uniform ranks on 0..L, exactly the null of the ranks.
double simultaneous_gamma(int count, int draws, const std::vector<BinomialTails>& tails,
                          const RankTestSettings& settings) {
  const int values = draws + 1;
  // At most ~2e8 null draws in all: a very large table (R K in the millions) uses fewer null
  // samples (at least 200), so the band's level is then a little less precise.
  const int samples =
      std::max(std::min(settings.band_simulations, 200),
               static_cast<int>(std::min<double>(settings.band_simulations, 2e8 / count)));
  std::vector<double> minima;
  std::vector<int> cells(static_cast<std::size_t>(values));
  for (int s = 0; s < samples; ++s) {
    RandomStream stream({settings.seed, RandomPurpose::kCalibration},
                        {0, static_cast<std::uint64_t>(s), 0});
    std::fill(cells.begin(), cells.end(), 0);
    for (int i = 0; i < count; ++i)
      ++cells[static_cast<std::size_t>(
          std::min(values - 1, static_cast<int>(stream.next_uniform() * values)))];
    int below = 0;
    double smallest = 1.0;
    for (int i = 1; i < values; ++i) {
      below += cells[static_cast<std::size_t>(i - 1)];
      smallest = std::min(smallest, tails[static_cast<std::size_t>(i - 1)].two_sided(below));
    }
    minima.push_back(smallest);
  }
  std::sort(minima.begin(), minima.end());
  const auto at = static_cast<std::size_t>(
      std::floor((1.0 - settings.band_level) * static_cast<double>(minima.size())));
  return minima[std::min(at, minima.size() - 1)];
}

// Kish's design effect of the K scalars of a replicate (see the header).
double design_effect(const Eigen::ArrayXXd& fractions) {
  const Eigen::Index replicates = fractions.rows(), scalars = fractions.cols();
  if (scalars < 2 || replicates < 2) return 1.0;
  const Eigen::ArrayXd means = fractions.rowwise().mean();
  const double centre = means.mean();
  const double observed = (means - centre).square().sum() / static_cast<double>(replicates - 1);
  const double overall = fractions.mean();
  const double pooled =
      (fractions - overall).square().sum() / static_cast<double>(fractions.size() - 1);
  return std::max(1.0, observed / (pooled / static_cast<double>(scalars)));
}

}  // namespace

std::string verdict_name(RankVerdict verdict) {
  switch (verdict) {
    case RankVerdict::kUniform:
      return "uniform";
    case RankVerdict::kTooNarrow:
      return "too narrow";
    case RankVerdict::kTooWide:
      return "too wide";
    case RankVerdict::kBiased:
      return "biased";
  }
  return "uniform";
}

RankVerdict rank_verdict(const RankShape& shape, double alpha) {
  if (!(shape.p_value < alpha)) return RankVerdict::kUniform;
  if (std::abs(shape.mean_z) > std::abs(shape.outer_z)) return RankVerdict::kBiased;
  return shape.outer_z > 0 ? RankVerdict::kTooNarrow : RankVerdict::kTooWide;
}

RankTest test_rank_uniformity(const RankTable& ranks, int draws, const RankTestSettings& settings) {
  const int values = draws + 1;
  if (draws < 1) throw ConfigError("--draws must be >= 1 (got " + std::to_string(draws) + ")");
  if (settings.bins < 2 || values % settings.bins != 0)
    throw ConfigError("--rank-bins " + std::to_string(settings.bins) +
                      " must be >= 2 and divide --draws + 1 = " + std::to_string(values));
  if (ranks.size() == 0) throw InputError("rank test: no ranks");
  if ((ranks.array() < 0).any() || (ranks.array() > draws).any())
    throw InputError("rank test: a rank outside 0.." + std::to_string(draws));

  RankTest test;
  const double count = static_cast<double>(ranks.size());
  const Eigen::ArrayXXd fractions = (ranks.cast<double>().array() + 0.5) / values;
  test.design_effect = design_effect(fractions);
  test.effective_count = std::max(1.0, std::round(count / test.design_effect));

  // Chi-square on B equal bins of ranks.
  const int per_bin = values / settings.bins;
  test.histogram.assign(static_cast<std::size_t>(settings.bins), 0);
  std::vector<std::int64_t> cells(static_cast<std::size_t>(values), 0);
  for (Eigen::Index i = 0; i < ranks.size(); ++i) {
    const std::int64_t r = ranks.data()[i];
    ++cells[static_cast<std::size_t>(r)];
    ++test.histogram[static_cast<std::size_t>(r / per_bin)];
  }
  const double expected = count / settings.bins;
  double raw = 0;
  for (std::int64_t h : test.histogram) raw += std::pow(static_cast<double>(h) - expected, 2);
  test.chi_square = raw / expected / test.design_effect;
  test.chi_square_dof = settings.bins - 1;
  test.chi_square_p_value = boost::math::cdf(boost::math::complement(
      boost::math::chi_squared_distribution<double>(test.chi_square_dof), test.chi_square));

  // Shape: the mean fractional rank and the share of ranks in the outer half (the ranks whose
  // fractional rank is below 1/4 or above 3/4), against their exact null values.
  int outer_values = 0;
  for (int r = 0; r < values; ++r) {
    const double u = (r + 0.5) / values;
    outer_values += (u < 0.25 || u > 0.75) ? 1 : 0;
  }
  const double outer_null = static_cast<double>(outer_values) / values;
  const double outer = ((fractions < 0.25) || (fractions > 0.75)).cast<double>().mean();
  const double rank_variance = (static_cast<double>(values) * values - 1) / 12.0 / values / values;
  test.shape.p_value = test.chi_square_p_value;
  test.shape.mean_z = (fractions.mean() - 0.5) / std::sqrt(rank_variance / test.effective_count);
  test.shape.outer_z =
      (outer - outer_null) / std::sqrt(outer_null * (1 - outer_null) / test.effective_count);
  test.verdict = rank_verdict(test.shape, settings.alpha);

  // ECDF difference and its simultaneous band.
  const auto band_count = static_cast<int>(test.effective_count);
  const std::vector<BinomialTails> tails = grid_tails(band_count, draws);
  const double gamma = simultaneous_gamma(band_count, draws, tails, settings);
  double below = 0;
  for (int i = 1; i < values; ++i) {
    below += static_cast<double>(cells[static_cast<std::size_t>(i - 1)]);
    const double z = static_cast<double>(i) / values;
    test.ecdf_grid.push_back(z);
    test.ecdf_difference.push_back(below / count - z);
    const BinomialTails& tail = tails[static_cast<std::size_t>(i - 1)];
    test.band_lower.push_back(static_cast<double>(tail.lower_quantile(gamma / 2)) / band_count - z);
    test.band_upper.push_back(static_cast<double>(tail.upper_quantile(gamma / 2)) / band_count - z);
    test.outside_band = test.outside_band || test.ecdf_difference.back() < test.band_lower.back() ||
                        test.ecdf_difference.back() > test.band_upper.back();
  }
  return test;
}

std::vector<double> rank_interval_coverage(const RankTable& ranks, int draws,
                                           const std::vector<double>& levels,
                                           std::vector<double>* nominal) {
  std::vector<double> coverage;
  if (nominal) nominal->clear();
  for (double level : levels) {
    auto inside = [&](std::int64_t r) {
      return std::abs(static_cast<double>(r) / draws - 0.5) <= level / 2 + 1e-12;
    };
    double hits = 0;
    for (Eigen::Index i = 0; i < ranks.size(); ++i) hits += inside(ranks.data()[i]) ? 1 : 0;
    coverage.push_back(ranks.size() ? hits / static_cast<double>(ranks.size()) : 0.0);
    if (nominal) {
      double null_hits = 0;
      for (int r = 0; r <= draws; ++r) null_hits += inside(r) ? 1 : 0;
      nominal->push_back(null_hits / (draws + 1));
    }
  }
  return coverage;
}

}  // namespace spikevi
