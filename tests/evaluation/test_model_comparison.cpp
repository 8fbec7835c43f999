#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "spikevi/error.hpp"
#include "spikevi/evaluation/model_comparison.hpp"
#include "spikevi/version.hpp"

namespace spikevi {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

TEST(AssignFolds, SortedTrialIGoesToFoldIModK) {
  const auto folds = assign_folds({9, 2, 4, 0, 7, 5, 11}, 3);
  ASSERT_EQ(folds.size(), 3u);
  // Sorted: 0 2 4 5 7 9 11 -> positions 0,3,6 | 1,4 | 2,5.
  EXPECT_EQ(folds[0], (std::vector<int>{0, 5, 11}));
  EXPECT_EQ(folds[1], (std::vector<int>{2, 7}));
  EXPECT_EQ(folds[2], (std::vector<int>{4, 9}));
}

TEST(AssignFolds, DisjointCoveringAndBalanced) {
  std::vector<int> trials;
  for (int k = 0; k < 47; ++k) trials.push_back(3 * k + 1);
  for (int folds : {2, 3, 5, 10, 47}) {
    const auto assigned = assign_folds(trials, folds);
    ASSERT_EQ(assigned.size(), static_cast<std::size_t>(folds));
    std::multiset<int> seen;
    std::size_t smallest = trials.size(), largest = 0;
    for (const auto& fold : assigned) {
      seen.insert(fold.begin(), fold.end());
      smallest = std::min(smallest, fold.size());
      largest = std::max(largest, fold.size());
    }
    EXPECT_EQ(seen, std::multiset<int>(trials.begin(), trials.end())) << folds;
    EXPECT_EQ(smallest, 47 / folds) << folds;
    EXPECT_LE(largest - smallest, 1u) << folds;
    EXPECT_EQ(assigned.front().size(), largest) << "the first folds are the larger";
    for (int f = 0; f < folds; ++f) {
      const std::vector<int> training = training_trials_of(assigned, f);
      EXPECT_EQ(training.size() + assigned[static_cast<std::size_t>(f)].size(), trials.size());
      EXPECT_TRUE(std::is_sorted(training.begin(), training.end()));
      for (int trial : assigned[static_cast<std::size_t>(f)])
        EXPECT_FALSE(std::binary_search(training.begin(), training.end(), trial));
    }
  }
}

TEST(AssignFolds, RefusesTooFewFoldsOrTrialsAndDuplicates) {
  EXPECT_THROW(assign_folds({0, 1, 2}, 1), ConfigError);
  EXPECT_THROW(assign_folds({0, 1, 2}, 4), ConfigError);
  EXPECT_THROW(assign_folds({0, 1, 1}, 2), InputError);
  try {
    assign_folds({0, 1, 2}, 4);
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--folds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(assign_folds({4, 1}, 2), (std::vector<std::vector<int>>{{1}, {4}}));
}

TEST(Summarise, MeanAndStandardErrorOfKnownNumbers) {
  // 2 4 4 4 5 5 7 9: mean 5, sample variance 32/7, se = sqrt(32/7)/sqrt(8) = sqrt(4/7).
  const Summary s = summarise({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.count, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.se, std::sqrt(4.0 / 7.0));
  const Summary pair = summarise({1.0, 3.0});  // sd sqrt(2), se 1
  EXPECT_DOUBLE_EQ(pair.mean, 2.0);
  EXPECT_DOUBLE_EQ(pair.se, 1.0);
  const Summary same = summarise({-0.25, -0.25, -0.25});
  EXPECT_EQ(same.mean, -0.25);
  EXPECT_EQ(same.se, 0.0);
}

TEST(Summarise, NaNAndTooFewValues) {
  const Summary one = summarise({3.5});
  EXPECT_EQ(one.mean, 3.5);
  EXPECT_TRUE(std::isnan(one.se));
  const Summary none = summarise({});
  EXPECT_EQ(none.count, 0);
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_TRUE(std::isnan(none.se));
  const Summary failed = summarise({1.0, kNaN, 2.0});
  EXPECT_TRUE(std::isnan(failed.mean));
  EXPECT_TRUE(std::isnan(failed.se));
}

TEST(Median, OddEvenAndEmpty) {
  EXPECT_EQ(median({3, 1, 2}), 2.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({7}), 7.0);
  EXPECT_TRUE(std::isnan(median({})));
}

GaussianMoments diagonal_moments(const Eigen::ArrayXXd& variances) {
  GaussianMoments q;
  const auto D = variances.rows(), T = variances.cols();
  q.mean = Eigen::MatrixXd::Zero(D, T);
  q.cov = Eigen::MatrixXd::Zero(D, T * D);
  q.lag_cov = Eigen::MatrixXd::Zero(D, T * D);
  for (Eigen::Index t = 0; t < T; ++t)
    q.cov.middleCols(t * D, D).diagonal() = variances.col(t).matrix();
  return q;
}

TEST(VarianceRatio, LogRateVariancesAreGaugeFreeAndTheMedianRatio) {
  Eigen::ArrayXXd a(2, 3), b(2, 2);
  a << 1, 2, 3, 4, 5, 6;
  b << 8, 9, 10, 11;
  // Unit readout rows: s2_nt = S_t(nn), the latent variances themselves.
  Readout unit;
  unit.C = Eigen::MatrixXd::Identity(2, 2);
  unit.d = Eigen::VectorXd::Zero(2);
  unit.precision = Eigen::MatrixXd::Identity(3, 3).replicate(1, 2);
  const auto variances = log_rate_variances(unit, {diagonal_moments(a), diagonal_moments(b)});
  ASSERT_EQ(variances.size(), 2u);
  EXPECT_LT((variances[0] - a).abs().maxCoeff(), 1e-14);
  EXPECT_LT((variances[1] - b).abs().maxCoeff(), 1e-14);
  // z -> M z with C -> C M^-1 leaves c_n' S_t c_n unchanged.
  Eigen::Matrix2d M;
  M << 2.0, 0.5, -1.0, 3.0;
  Readout moved = unit;
  moved.C = unit.C * M.inverse();
  GaussianMoments q = diagonal_moments(a), q_moved = q;
  for (int t = 0; t < 3; ++t)
    q_moved.cov.middleCols(t * 2, 2) = M * q.cov.middleCols(t * 2, 2) * M.transpose();
  EXPECT_LT((log_rate_variances(moved, {q_moved})[0] - a).abs().maxCoeff(), 1e-12);
  // Ratios a/(a/2) = 2 (6 entries) and b/(b*4) = 0.25 (4 entries): the 5th and 6th of the
  // sorted 10 are both 2.
  const std::vector<Eigen::ArrayXXd> half{a / 2, b * 4};
  EXPECT_DOUBLE_EQ(median_variance_ratio(variances, half), 2.0);
  // Even count with distinct middle values: 1 and 4 over 1 each, then 2 and 3 -> 2.5.
  Eigen::ArrayXXd n(1, 4), d = Eigen::ArrayXXd::Ones(1, 4);
  n << 1, 4, 2, 3;
  EXPECT_DOUBLE_EQ(median_variance_ratio({n}, {d}), 2.5);
  EXPECT_THROW(median_variance_ratio({a}, {b}), InputError);
  EXPECT_THROW(median_variance_ratio({a}, {}), InputError);
  EXPECT_THROW(median_variance_ratio({}, {}), InputError);
}

TEST(SummariseFolds, FiguresAndTime) {
  std::vector<FoldScores> folds(3);
  for (int f = 0; f < 3; ++f) {
    folds[f].train_elbo_per_spike = -1.0 - f;        // -1 -2 -3: mean -2, se 1/sqrt(3)
    folds[f].heldout_elbo_per_spike = -2.0;          // se 0
    folds[f].heldout_ll_per_spike = -1.5 + 0.5 * f;  // -1.5 -1 -0.5
    folds[f].heldout_ll_mc_se_per_spike = 0.001 * (f + 1);
    folds[f].cobps = 0.1 * f;
    folds[f].seconds = 1.5;
  }
  const ComparisonRow row = summarise_folds("poisson", "gauss-markov", folds);
  EXPECT_EQ(row.observation, "poisson");
  EXPECT_EQ(row.family, "gauss-markov");
  EXPECT_DOUBLE_EQ(row.elbo_per_spike.mean, -2.0);
  EXPECT_DOUBLE_EQ(row.elbo_per_spike.se, 1.0 / std::sqrt(3.0));
  EXPECT_EQ(row.heldout_elbo_per_spike.se, 0.0);
  EXPECT_DOUBLE_EQ(row.heldout_ll_per_spike.mean, -1.0);
  EXPECT_DOUBLE_EQ(row.heldout_ll_per_spike.se, 0.5 / std::sqrt(3.0));
  EXPECT_DOUBLE_EQ(row.heldout_ll_mc_se, 0.003);
  EXPECT_DOUBLE_EQ(row.cobps.mean, 0.1);
  EXPECT_DOUBLE_EQ(row.seconds, 4.5);
  EXPECT_TRUE(std::isnan(row.family_elbo_gap_per_spike));
  EXPECT_TRUE(std::isnan(row.variance_ratio));
}

// Exact expectations keep the held-out ELBO below the importance-sampled logp up to Monte Carlo
// error; the check flags only an excess beyond 5 standard errors + 0.01 nats/spike.
TEST(ElboExcess, FlagsOnlyAnElboAboveTheLikelihoodBeyondItsError) {
  FoldScores fold;
  fold.heldout_ll_per_spike = -2.8;
  fold.heldout_ll_mc_se_per_spike = 0.002;  // allowed excess: 0.01 + 0.01 = 0.02
  fold.heldout_elbo_per_spike = -2.81;      // below: an honest ELBO
  EXPECT_EQ(elbo_excess_over_likelihood(fold), 0.0);
  fold.heldout_elbo_per_spike = -2.8 + 0.0199;  // above, but within the allowance
  EXPECT_EQ(elbo_excess_over_likelihood(fold), 0.0);
  fold.heldout_elbo_per_spike = -2.8 + 0.0201;
  EXPECT_NEAR(elbo_excess_over_likelihood(fold), 0.0201, 1e-12);
  fold.heldout_elbo_per_spike = -2.34;  // the MLP readout on human_mtl (README)
  EXPECT_NEAR(elbo_excess_over_likelihood(fold), 0.46, 1e-12);
  fold.heldout_ll_per_spike = kNaN;  // a failed fold
  EXPECT_EQ(elbo_excess_over_likelihood(fold), 0.0);
}

TEST(ElboExcess, RowCountsTheFoldsAndTheTableWarns) {
  std::vector<FoldScores> folds(3);
  for (int f = 0; f < 3; ++f) {
    folds[f].heldout_ll_per_spike = -4.0;
    folds[f].heldout_ll_mc_se_per_spike = 0.0;
    folds[f].heldout_elbo_per_spike = -4.5;  // honest
  }
  ComparisonRow row = summarise_folds("poisson+mlp", "gauss-markov", folds);
  EXPECT_EQ(row.folds_elbo_above_likelihood, 0);
  EXPECT_EQ(format_comparison_table({row}, 3).find("warning"), std::string::npos);
  folds[0].heldout_elbo_per_spike = -2.5;  // 1.5 above
  folds[2].heldout_elbo_per_spike = -3.5;  // 0.5 above
  row = summarise_folds("poisson+mlp", "gauss-markov", folds);
  row.latents = 4;
  EXPECT_EQ(row.folds_elbo_above_likelihood, 2);
  EXPECT_DOUBLE_EQ(row.mean_elbo_excess, 1.0);
  const std::string table = format_comparison_table({row}, 3);
  EXPECT_NE(table.find("warning (poisson+mlp, D = 4): in 2 of 3 folds the held-out ELBO lies "
                       "1.000 nats/spike above"),
            std::string::npos)
      << table;
}

std::vector<ComparisonRow> example_rows() {
  ComparisonRow poisson;
  poisson.observation = "poisson";
  poisson.family = "gauss-markov";
  poisson.latents = 4;
  poisson.elbo_per_spike = {-1.25, 0.5, 3};
  poisson.heldout_elbo_per_spike = {-1.5, 0.25, 3};
  poisson.heldout_ll_per_spike = {-1.375, 0.125, 3};
  poisson.cobps = {0.1, 0.01, 3};
  poisson.seconds = 12.5;
  ComparisonRow mean_field = poisson;
  mean_field.family = "mean-field";
  mean_field.cobps = {kNaN, kNaN, 3};
  mean_field.family_elbo_gap_per_spike = 0.0625;
  mean_field.variance_ratio = 1.5;
  return {poisson, mean_field};
}

TEST(ComparisonCsv, ExactHeaderAndRowsNaNEmpty) {
  std::ostringstream out;
  write_comparison_csv(out, example_rows());
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "observation,family,latents,continuous,elbo_per_spike,elbo_se,heldout_ll_per_spike,"
            "heldout_ll_se,cobps,cobps_se,seconds,family_elbo_gap_per_spike,variance_ratio,"
            "version,git_revision");
  const std::string build = std::string(",") + version() + "," + git_revision();
  EXPECT_EQ(lines[1], "poisson,gauss-markov,4,none,-1.25,0.5,-1.375,0.125,0.1,0.01,12.5,," + build);
  EXPECT_EQ(lines[2], "poisson,mean-field,4,none,-1.25,0.5,-1.375,0.125,,,12.5,0.0625,1.5" + build);
  EXPECT_EQ(comparison_columns().size(), 15u);
}

TEST(ComparisonTable, DivergedFiguresKeepTheColumns) {
  std::vector<ComparisonRow> rows = example_rows();
  rows[0].heldout_elbo_per_spike = {-5.08e24, 5.08e24, 3};
  rows[1].heldout_elbo_per_spike = {-std::numeric_limits<double>::infinity(), kNaN, 3};
  const std::string table = format_comparison_table(rows, 3);
  EXPECT_NE(table.find("-5.08e+24 (diverged)"), std::string::npos) << table;
  EXPECT_NE(table.find("-inf (diverged)"), std::string::npos) << table;
  std::istringstream lines(table);
  std::string header, first, second;
  std::getline(lines, header), std::getline(lines, first), std::getline(lines, second);
  // "±" is one column in two bytes.
  const auto columns = [](const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  EXPECT_EQ(columns(first), columns(second)) << table;
}

TEST(Selection, HighestMeanScoreWinsAndFailedRowsArePassedOver) {
  std::vector<ComparisonRow> rows = example_rows();
  // The mean-field row has no co-bps (NaN): the Gauss-Markov row wins by co-smoothing.
  EXPECT_EQ(best_row(rows, SelectionCriterion::kCosmoothing), 0u);
  rows[1].heldout_ll_per_spike.mean = -1.0;  // above -1.375
  EXPECT_EQ(best_row(rows, SelectionCriterion::kHeldoutLikelihood), 1u);
  rows[1].heldout_ll_per_spike.mean = rows[0].heldout_ll_per_spike.mean;  // a tie: the first
  EXPECT_EQ(best_row(rows, SelectionCriterion::kHeldoutLikelihood), 0u);
  rows[0].cobps.mean = kNaN;
  EXPECT_THROW(best_row(rows, SelectionCriterion::kCosmoothing), InputError);
  EXPECT_EQ(parse_selection_criterion("heldout-ll"), SelectionCriterion::kHeldoutLikelihood);
  EXPECT_THROW(parse_selection_criterion("elbo"), ConfigError);
}

TEST(ComparisonCsv, NumbersReadBackExactly) {
  ComparisonRow row = example_rows().front();
  row.elbo_per_spike.mean = 0.1 + 0.2;  // 0.30000000000000004
  row.elbo_per_spike.se = 1.0 / 3.0;
  std::ostringstream out;
  write_comparison_csv(out, {row});
  const std::string line = lines_of(out.str())[1];
  std::stringstream cells(line);
  std::string cell;
  for (int skipped = 0; skipped < 4; ++skipped) std::getline(cells, cell, ',');  // the labels
  std::getline(cells, cell, ',');
  EXPECT_EQ(std::stod(cell), 0.1 + 0.2);
  std::getline(cells, cell, ',');
  EXPECT_EQ(std::stod(cell), 1.0 / 3.0);
}

TEST(ComparisonTable, MeanPlusMinusSeFamilyCheckAndCaveat) {
  const std::string table = format_comparison_table(example_rows(), 3);
  EXPECT_NE(table.find("-1.2500 ± 0.5000"), std::string::npos) << table;
  EXPECT_NE(table.find("-1.3750 ± 0.1250"), std::string::npos) << table;
  EXPECT_NE(table.find("n/a"), std::string::npos) << "NaN co-bps shown as n/a\n" << table;
  EXPECT_NE(table.find("over 3 folds"), std::string::npos) << table;
  EXPECT_NE(table.find("family check (poisson, D = 4)"), std::string::npos) << table;
  EXPECT_NE(table.find("+0.0625"), std::string::npos) << table;
  EXPECT_NE(table.find("1.500"), std::string::npos) << table;
  EXPECT_NE(table.find(kComparisonCaveat), std::string::npos) << table;
  EXPECT_NE(std::string(kComparisonCaveat).find("fair only when"), std::string::npos);
  // One family only: no family-check line, the caveat still.
  std::vector<ComparisonRow> single{example_rows().front()};
  const std::string plain = format_comparison_table(single, 3);
  EXPECT_EQ(plain.find("family check"), std::string::npos) << plain;
  EXPECT_NE(plain.find(kComparisonCaveat), std::string::npos) << plain;
}

}  // namespace
}  // namespace spikevi
