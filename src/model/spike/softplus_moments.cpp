// The softplus family's Gaussian expectations by per-entry Gauss–Hermite rules (see
// softplus_moments.hpp). Entries are collected, in column-major order, into batches of
// kLanes that take the same rule; a full batch is integrated at once in fixed-size arrays
// (Eigen's packet exp and log, no scalar tail), and the last, partial batch of each rule is
// padded. Every lane of a batch runs the same instructions, so an entry's result does not
// depend on its lane or batch.
#include "model/spike/softplus_moments.hpp"

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/math/elementwise.hpp"

namespace spikevi {
namespace {

using Eigen::Index;

constexpr int kLanes = 32;
using Lanes = Eigen::Array<double, kLanes, 1>;

// Up to kLanes entries waiting for one rule: the mean of u, sqrt(2 s2), and where each goes.
struct Batch {
  Lanes center = Lanes::Zero(), spread = Lanes::Zero();
  std::array<Index, kLanes> entry{};
  int size = 0;
};

// The pointwise terms at one node, through the one exponential e = e^{-|u|} as in
// SoftplusTerms: d = 1 / (1 + e), (p, q) = (d, e d) for u >= 0 and (e d, d) for u < 0,
// p q = e d^2, softplus(u) = max(u, 0) + log1p(e); log1p(e) and d share one division
// (log1p_and_reciprocal, elementwise.hpp).
void add_node(const Lanes& u, double weight, std::array<Lanes, SoftplusMoments::kCount>& sum) {
  const Lanes e = (-u.abs()).exp();
  Lanes log1p_e, d;
  log1p_and_reciprocal(e, log1p_e, d);
  const Lanes ed = e * d;
  Lanes p, q;
  for (int l = 0; l < kLanes; ++l) {  // a masked blend once vectorised
    const bool upper = u[l] >= 0.0;
    p[l] = upper ? d[l] : ed[l];
    q[l] = upper ? ed[l] : d[l];
  }
  const Lanes pq = e * d.square();
  sum[SoftplusMoments::kSoftplus] += weight * (log1p_e + u.max(0.0));
  sum[SoftplusMoments::kP] += weight * p;
  sum[SoftplusMoments::kPQ] += weight * pq;
  sum[SoftplusMoments::kPQSkew] += weight * (pq * (q - p));
  sum[SoftplusMoments::kPQKurt] += weight * (pq * (1.0 - 6.0 * pq));
  sum[SoftplusMoments::kPSquared] += weight * p.square();
}

// The batch's moments by `rule`, nodes summed in pairs (t_i, -t_i) from the tails inwards
// (smallest weights first), as gaussian_expectations does.
void integrate(const GaussHermiteRule& rule, const Batch& batch, SoftplusMoments& out) {
  std::array<Lanes, SoftplusMoments::kCount> sum;
  for (Lanes& s : sum) s.setZero();
  const Eigen::ArrayXd& t = rule.nodes();
  const Eigen::ArrayXd& w = rule.gaussian_weights();
  for (int lower = 0, upper = rule.points() - 1; lower <= upper; ++lower, --upper) {
    add_node(batch.center + t(lower) * batch.spread, w(lower), sum);
    if (upper != lower) add_node(batch.center + t(upper) * batch.spread, w(upper), sum);
  }
  for (int k = 0; k < SoftplusMoments::kCount; ++k) {
    double* target = out.of[static_cast<std::size_t>(k)].data();
    for (int l = 0; l < batch.size; ++l)
      target[batch.entry[static_cast<std::size_t>(l)]] = sum[static_cast<std::size_t>(k)][l];
  }
}

void compute(const GaussHermiteLadder& ladder, const Eigen::ArrayXXd& mu, const Eigen::ArrayXXd& s2,
             const Eigen::ArrayXd& shifts, SoftplusMoments& out) {
  const Index rows = mu.rows(), cols = mu.cols();
  for (Eigen::ArrayXXd& moment : out.of) moment.resize(rows, cols);
  std::vector<Batch> batches(ladder.steps());
  // Per bin, vectorised: the centres, spreads and steps (step_for_variance: the number of
  // limits s2 exceeds), then each entry into its step's batch.
  Eigen::ArrayXd center(rows), spread(rows);
  Eigen::ArrayXi step(rows);
  for (Index j = 0; j < cols; ++j) {
    if (shifts.size() > 0)
      center = mu.col(j) - shifts;
    else
      center = mu.col(j);
    spread = (2.0 * s2.col(j)).sqrt();
    step.setZero();
    for (std::size_t k = 0; k + 1 < ladder.steps(); ++k)
      step += (s2.col(j) > ladder.limit(k)).cast<int>();
    for (Index i = 0; i < rows; ++i) {
      const auto k = static_cast<std::size_t>(step(i));
      Batch& batch = batches[k];
      batch.center[batch.size] = center(i);
      batch.spread[batch.size] = spread(i);
      batch.entry[static_cast<std::size_t>(batch.size)] = j * rows + i;
      if (++batch.size == kLanes) {
        integrate(ladder.step(k), batch, out);
        batch.size = 0;
      }
    }
  }
  for (std::size_t k = 0; k < batches.size(); ++k)
    if (batches[k].size > 0) integrate(ladder.step(k), batches[k], out);
}

bool same_bits(const Eigen::ArrayXXd& a, const Eigen::ArrayXXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * static_cast<std::size_t>(a.size())) == 0;
}

bool same_bits(const Eigen::ArrayXd& a, const Eigen::ArrayXd& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * static_cast<std::size_t>(a.size())) == 0;
}

// One thread's last call: its inputs and its moments.
struct Memo {
  std::optional<GaussHermiteLadder> ladder;
  Eigen::ArrayXXd mu, s2;
  Eigen::ArrayXd shifts;
  SoftplusMoments moments;
  bool valid = false;
};

}  // namespace

const SoftplusMoments& softplus_moments(const GaussHermiteLadder& ladder, const Eigen::ArrayXXd& mu,
                                        const Eigen::ArrayXXd& s2, const Eigen::ArrayXd& shifts) {
  if (mu.rows() != s2.rows() || mu.cols() != s2.cols() ||
      (shifts.size() > 0 && shifts.size() != mu.rows())) {
    throw InputError("softplus moments: mu is " + std::to_string(mu.rows()) + " x " +
                     std::to_string(mu.cols()) + ", s2 " + std::to_string(s2.rows()) + " x " +
                     std::to_string(s2.cols()) + ", with " + std::to_string(shifts.size()) +
                     " row shifts");
  }
  thread_local Memo memo;
  const bool same_ladder = memo.ladder && *memo.ladder == ladder;
  if (memo.valid && same_ladder && same_bits(memo.mu, mu) && same_bits(memo.s2, s2) &&
      same_bits(memo.shifts, shifts))
    return memo.moments;
  memo.valid = false;
  if (!same_ladder) memo.ladder = ladder;  // models keep their ladder: copied once per model
  compute(ladder, mu, s2, shifts, memo.moments);
  memo.mu = mu;
  memo.s2 = s2;
  memo.shifts = shifts;
  memo.valid = true;
  return memo.moments;
}

}  // namespace spikevi
