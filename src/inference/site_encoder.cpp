#include "spikevi/inference/site_encoder.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/elementwise.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

double softplus(double x) { return x > 30.0 ? x : std::log1p(std::exp(x)); }
double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double inverse_softplus(double y) { return y > 30.0 ? y : std::log(std::expm1(y)); }

void check_inputs(const Eigen::ArrayXXd& counts, const EncoderShape& shape) {
  if (counts.rows() != shape.inputs)
    throw InputError("encoder: the trial has " + std::to_string(counts.rows()) +
                     " neurons, the encoder reads " + std::to_string(shape.inputs));
}

// The nonzero counts (N x T), bin by bin, into the scratch's compressed columns, then their
// u = log1p(x) (log1p(0) = 0 adds nothing to the convolution). Written without a branch on
// the value (zero or not at random in spike counts): every entry is stored, and the write
// position only advances past nonzero ones.
void collect_nonzero_inputs(const Eigen::ArrayXXd& counts, EncoderScratch& scratch) {
  scratch.bin_start.resize(static_cast<std::size_t>(counts.cols()) + 1);
  scratch.nonzero_row.resize(static_cast<std::size_t>(counts.size()));
  scratch.nonzero_value.resize(static_cast<std::size_t>(counts.size()));
  int next = 0;
  for (Eigen::Index t = 0; t < counts.cols(); ++t) {
    scratch.bin_start[static_cast<std::size_t>(t)] = next;
    for (Eigen::Index n = 0; n < counts.rows(); ++n) {
      scratch.nonzero_row[static_cast<std::size_t>(next)] = static_cast<int>(n);
      scratch.nonzero_value[static_cast<std::size_t>(next)] = counts(n, t);
      next += counts(n, t) != 0.0 ? 1 : 0;
    }
  }
  scratch.bin_start.back() = next;
  log1p_counts(scratch.nonzero_value.data(), next, scratch.nonzero_value.data());
}

// hidden(:, t) = b1 + sum_{s=-w..w} W1_s u_{t+s} over the nonzero u only, shift by shift (so
// the H x N block W1_s in use stays in the L1 cache). With H fixed at compile time each
// (s, t) term is summed in registers as `Partials` interleaved partial sums (terms k,
// k + Partials, ... go to the same one), so consecutive multiply-adds do not wait on each other.
template <int H, int Partials>
void convolve_nonzero(const Eigen::MatrixXd::ConstMapType& W1,
                      const Eigen::VectorXd::ConstMapType& b1, int inputs, int half_window,
                      EncoderScratch& scratch) {
  const Eigen::Index hidden = W1.rows();
  const auto bins = static_cast<int>(scratch.bin_start.size()) - 1;
  using Column = Eigen::Matrix<double, H, 1>;
  scratch.hidden.resize(hidden, bins);
  scratch.hidden.colwise() = b1;
  for (int s = -half_window; s <= half_window; ++s) {
    const double* block = W1.data() + Eigen::Index{s + half_window} * inputs * hidden;
    const auto weight = [&](int k) {
      return Eigen::Map<const Column>(block + scratch.nonzero_row[k] * hidden, hidden);
    };
    for (int t = std::max(0, -s); t < std::min(bins, bins - s); ++t) {
      const int first = scratch.bin_start[t + s], end = scratch.bin_start[t + s + 1];
      if constexpr (H == Eigen::Dynamic) {
        auto sum = scratch.hidden.col(t);
        for (int k = first; k < end; ++k) sum.noalias() += scratch.nonzero_value[k] * weight(k);
      } else {
        std::array<Column, Partials> sum;
        for (Column& partial : sum) partial.setZero();
        int k = first;
        for (; k + Partials <= end; k += Partials)
          for (int j = 0; j < Partials; ++j)
            sum[j].noalias() += scratch.nonzero_value[k + j] * weight(k + j);
        for (; k < end; ++k) sum[0].noalias() += scratch.nonzero_value[k] * weight(k);
        for (int j = 1; j < Partials; ++j) sum[0] += sum[j];
        scratch.hidden.col(t) += sum[0];
      }
    }
  }
}

// Calls f.template operator()<H, Partials>() with H = the hidden width when it is one of the
// compiled sizes (Partials: as many partial sums as fit the vector registers), else Dynamic.
template <typename F>
void with_hidden_width(Eigen::Index hidden, F&& f) {
  switch (hidden) {
    case 8:
      return f.template operator()<8, 4>();
    case 16:
      return f.template operator()<16, 4>();
    case 32:
      return f.template operator()<32, 4>();
    case 64:
      return f.template operator()<64, 2>();
    default:
      return f.template operator()<Eigen::Dynamic, 1>();
  }
}

}  // namespace

// Views of the flat parameter vector as the network's matrices.
struct SiteEncoder::Blocks {
  using Map = Eigen::Map<Eigen::MatrixXd>;
  using VectorMap = Eigen::Map<Eigen::VectorXd>;
  Map W1, W2, W3;
  VectorMap b1, b2, b3;
  Blocks(const EncoderShape& s, double* p)
      : W1(p, s.hidden, Eigen::Index{s.inputs} * s.window),
        W2(p + W1.size() + s.hidden, s.latents, s.hidden),
        W3(p + W1.size() + s.hidden + W2.size() + s.latents, s.latents, s.hidden),
        b1(p + W1.size(), s.hidden),
        b2(p + W1.size() + s.hidden + W2.size(), s.latents),
        b3(p + W1.size() + s.hidden + 2 * W2.size() + s.latents, s.latents) {}
};

Eigen::Index EncoderShape::parameter_count() const {
  const Eigen::Index h = hidden, d = latents;
  return h * inputs * window + h + 2 * (d * h + d);
}

void EncoderShape::validate() const {
  if (hidden < 1)
    throw ConfigError("--encoder-hidden must be >= 1 (got " + std::to_string(hidden) + ")");
  if (window < 1 || window % 2 == 0)
    throw ConfigError("--encoder-window must be an odd number of bins >= 1 (got " +
                      std::to_string(window) + ")");
  if (inputs < 1) throw ConfigError("the encoder needs at least one input neuron");
  if (latents < 1) throw ConfigError("the encoder needs --latents >= 1");
}

SiteEncoder::SiteEncoder(const EncoderShape& shape, std::uint64_t seed, double initial_precision)
    : shape_(shape), parameters_(Eigen::VectorXd::Zero(shape.parameter_count())) {
  shape_.validate();
  Blocks w(shape_, parameters_.data());
  RandomStream stream(RandomKey{seed, RandomPurpose::kInitialisation}, RandomCounter{0, 0, 14});
  const double scale1 = 1.0 / std::sqrt(static_cast<double>(w.W1.cols()));
  const double scale2 = 0.1 / std::sqrt(static_cast<double>(shape_.hidden));
  for (Eigen::Index i = 0; i < w.W1.size(); ++i) w.W1.data()[i] = scale1 * stream.next_normal();
  for (Eigen::Index i = 0; i < w.W2.size(); ++i) w.W2.data()[i] = scale2 * stream.next_normal();
  for (Eigen::Index i = 0; i < w.W3.size(); ++i) w.W3.data()[i] = scale2 * stream.next_normal();
  w.b3.setConstant(inverse_softplus(initial_precision));
}

SiteEncoder::SiteEncoder(const EncoderShape& shape, const Eigen::VectorXd& parameters)
    : shape_(shape) {
  shape_.validate();
  set_parameters(parameters);
}

void SiteEncoder::set_parameters(const Eigen::VectorXd& parameters) {
  if (parameters.size() != shape_.parameter_count())
    throw InputError("encoder: " + std::to_string(parameters.size()) +
                     " weights given, the network has " + std::to_string(shape_.parameter_count()));
  parameters_ = parameters;
}

Sites SiteEncoder::encode(const Eigen::ArrayXXd& counts) const {
  EncoderPass pass;
  return encode(counts, pass);
}

Sites SiteEncoder::encode(const Eigen::ArrayXXd& counts, EncoderPass& pass) const {
  check_inputs(counts, shape_);
  const int n = shape_.inputs, w = shape_.half_window(), d = shape_.latents;
  const auto bins = static_cast<int>(counts.cols());
  // The convolution as one matrix product: stack the window's inputs of each bin (im2col).
  Eigen::MatrixXd u;
  log1p_counts(counts, u);
  pass.window_inputs.setZero(Eigen::Index{n} * shape_.window, bins);
  for (int s = -w; s <= w; ++s) {
    const int first = std::max(0, -s), last = std::min(bins, bins - s);  // t with t+s in range
    if (last > first)
      pass.window_inputs.block(Eigen::Index{s + w} * n, first, n, last - first) =
          u.middleCols(first + s, last - first);
  }
  Blocks p(shape_, const_cast<double*>(parameters_.data()));
  pass.hidden = ((p.W1 * pass.window_inputs).colwise() + p.b1).array().tanh().matrix();
  pass.precision_logits = (p.W3 * pass.hidden).colwise() + p.b3;
  Sites sites;
  sites.shift = (p.W2 * pass.hidden).colwise() + p.b2;
  sites.precision = Eigen::MatrixXd::Zero(d, Eigen::Index{d} * bins);
  for (int t = 0; t < bins; ++t)
    for (int i = 0; i < d; ++i)
      sites.precision(i, Eigen::Index{t} * d + i) = softplus(pass.precision_logits(i, t));
  return sites;
}

Sites SiteEncoder::predict_sites(const Eigen::ArrayXXd& counts) const {
  EncoderScratch scratch;
  Sites sites;
  predict_sites(counts, scratch, sites);
  return sites;
}

void SiteEncoder::predict_sites(const Eigen::ArrayXXd& counts, EncoderScratch& scratch,
                                Sites& sites) const {
  check_inputs(counts, shape_);
  const int d = shape_.latents;
  const Eigen::Index bins = counts.cols();
  collect_nonzero_inputs(counts, scratch);
  Blocks p(shape_, const_cast<double*>(parameters_.data()));
  const Eigen::MatrixXd::ConstMapType W1(p.W1.data(), p.W1.rows(), p.W1.cols());
  const Eigen::VectorXd::ConstMapType b1(p.b1.data(), p.b1.size());
  with_hidden_width(shape_.hidden, [&]<int H, int Partials>() {
    convolve_nonzero<H, Partials>(W1, b1, shape_.inputs, shape_.half_window(), scratch);
  });
  tanh_in_place(scratch.hidden);
  sites.shift.resize(d, bins);
  sites.shift.noalias() = p.W2 * scratch.hidden;
  sites.shift.colwise() += p.b2;
  scratch.precision_diagonal.resize(d, bins);
  scratch.precision_diagonal.noalias() = p.W3 * scratch.hidden;
  scratch.precision_diagonal.colwise() += p.b3;
  softplus_in_place(scratch.precision_diagonal);
  sites.precision.setZero(d, Eigen::Index{d} * bins);
  for (Eigen::Index t = 0; t < bins; ++t)
    sites.precision.middleCols(t * d, d).diagonal() = scratch.precision_diagonal.col(t);
}

void SiteEncoder::backward(const EncoderPass& pass, const Sites& site_gradient,
                           Eigen::VectorXd& gradient) const {
  const int d = shape_.latents;
  const auto bins = static_cast<int>(pass.hidden.cols());
  if (gradient.size() != parameters_.size()) gradient = Eigen::VectorXd::Zero(parameters_.size());
  Blocks p(shape_, const_cast<double*>(parameters_.data()));
  Blocks g(shape_, gradient.data());
  // d f / d logits of the precision: df/dL_t,ii softplus'(logit) = df/dL_t,ii logistic(logit).
  Eigen::MatrixXd logit_gradient(d, bins);
  for (int t = 0; t < bins; ++t)
    for (int i = 0; i < d; ++i)
      logit_gradient(i, t) = site_gradient.precision(i, Eigen::Index{t} * d + i) *
                             logistic(pass.precision_logits(i, t));
  const Eigen::MatrixXd& shift_gradient = site_gradient.shift;
  g.W2.noalias() += shift_gradient * pass.hidden.transpose();
  g.b2 += shift_gradient.rowwise().sum();
  g.W3.noalias() += logit_gradient * pass.hidden.transpose();
  g.b3 += logit_gradient.rowwise().sum();
  Eigen::MatrixXd pre_gradient = p.W2.transpose() * shift_gradient;
  pre_gradient.noalias() += p.W3.transpose() * logit_gradient;
  pre_gradient.array() *= 1.0 - pass.hidden.array().square();  // tanh' = 1 - a^2
  g.W1.noalias() += pre_gradient * pass.window_inputs.transpose();
  g.b1 += pre_gradient.rowwise().sum();
}

}  // namespace spikevi
