#include "spikevi/inference/site_encoder.hpp"

#include <cmath>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/math/random_stream.hpp"

namespace spikevi {
namespace {

double softplus(double x) { return x > 30.0 ? x : std::log1p(std::exp(x)); }
double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double inverse_softplus(double y) { return y > 30.0 ? y : std::log(std::expm1(y)); }

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
  if (counts.rows() != shape_.inputs)
    throw InputError("encoder: the trial has " + std::to_string(counts.rows()) +
                     " neurons, the encoder reads " + std::to_string(shape_.inputs));
  const int n = shape_.inputs, w = shape_.half_window(), d = shape_.latents;
  const auto bins = static_cast<int>(counts.cols());
  // The convolution as one matrix product: stack the window's inputs of each bin (im2col).
  const Eigen::MatrixXd u = counts.log1p().matrix();
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
