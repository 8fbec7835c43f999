#pragma once
// The encoder of amortised inference (DESIGN.md §6 "Amortised inference"): a small network
// e_psi that maps one trial's spike counts (the neurons used for inference) to the Gaussian
// sites of its Gauss-Markov posterior, per bin
//     u_t  = log(1 + x_t)                                  (N inputs per bin)
//     a_t  = tanh(b1 + sum_{s=-w..w} W1_s u_{t+s})         (H hidden units; u = 0 off the trial)
//     l_t  = W2 a_t + b2                                   (site shift, D)
//     L_t  = diag(softplus(W3 a_t + b3))                   (site precision, D x D, PSD)
// The temporal layer is a 1-D convolution over a window of 2w + 1 bins centred on t (zero
// padding at the trial's ends), so every site sees its neighbourhood; the Gauss-Markov chain
// of q(z) then carries information across the whole trial. Its gradients are hand-written
// backpropagation (tested against finite differences in tests/inference/test_site_encoder.cpp).
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "spikevi/inference/likelihood.hpp"

namespace spikevi {

struct EncoderShape {
  int inputs = 0;   // N: neurons the encoder reads
  int hidden = 32;  // H (--encoder-hidden)
  int window = 5;   // 2w + 1 bins of the convolution (--encoder-window, odd)
  int latents = 0;  // D
  int half_window() const { return window / 2; }
  // Number of weights (the length of the flat parameter vector).
  Eigen::Index parameter_count() const;
  // ConfigError naming --encoder-hidden / --encoder-window when not usable.
  void validate() const;
};

// One forward pass kept for the backward pass (reusable between trials).
struct EncoderPass {
  Eigen::MatrixXd window_inputs;     // (N (2w+1)) x T: the stacked log1p counts around each bin
  Eigen::MatrixXd hidden;            // H x T: a_t
  Eigen::MatrixXd precision_logits;  // D x T: W3 a_t + b3
};

// Scratch of SiteEncoder::predict_sites (reusable between trials: nothing is allocated once it
// has seen a trial of the same size and as many nonzero counts).
struct EncoderScratch {
  std::vector<int> bin_start;          // T + 1: bin t's nonzero inputs are [bin_start[t], [t + 1])
  std::vector<int> nonzero_row;        // the neuron of each nonzero count, bin by bin, and its
  std::vector<double> nonzero_value;   // u = log1p(count) (the first bin_start[T] entries)
  Eigen::MatrixXd hidden;              // H x T: a_t
  Eigen::MatrixXd precision_diagonal;  // D x T: softplus(W3 a_t + b3)
};

class SiteEncoder {
 public:
  SiteEncoder() = default;
  // Weights drawn from the counter-based stream keyed by `seed` (purpose kInitialisation,
  // iteration 0, trial 0, inner 14 (this issue)): W1 ~ N(0, 1 / (N (2w+1))), W2, W3 ~
  // N(0, scale^2 / H) with scale 0.1, b = 0 except b3 = softplus^-1(initial_precision).
  SiteEncoder(const EncoderShape& shape, std::uint64_t seed, double initial_precision = 1.0);
  // From a flat parameter vector (the layout of parameters()).
  SiteEncoder(const EncoderShape& shape, const Eigen::VectorXd& parameters);

  const EncoderShape& shape() const { return shape_; }
  // Flat vector of every weight: W1 (column-major), b1, W2, b2, W3, b3.
  const Eigen::VectorXd& parameters() const { return parameters_; }
  void set_parameters(const Eigen::VectorXd& parameters);

  // Sites of a trial from its counts (N x T). `pass` keeps what backward() needs.
  Sites encode(const Eigen::ArrayXXd& counts, EncoderPass& pass) const;
  Sites encode(const Eigen::ArrayXXd& counts) const;
  // The same sites for prediction only (inferring new trials): nothing is kept for
  // backward(), the convolution sums over the nonzero counts only (u = log1p(0) = 0 adds
  // nothing; spike counts are mostly zero), with the hidden layer accumulated in registers
  // for H = 8, 16, 32, 64, and tanh and softplus are vectorised (math/elementwise.hpp). Equal
  // to encode()'s sites up to rounding: the sums are reassociated and tanh, softplus are within
  // a few ulp of libm's (tests/inference/test_site_encoder.cpp compares them).
  void predict_sites(const Eigen::ArrayXXd& counts, EncoderScratch& scratch, Sites& sites) const;
  Sites predict_sites(const Eigen::ArrayXXd& counts) const;
  // Adds to `gradient` (length parameter_count()) the gradient of a scalar objective f with
  // respect to the weights, given df/dl (D x T) and df/dL (D x TD, only the diagonal entries
  // of each block are read: the encoder's L_t are diagonal) at the sites of `pass`.
  void backward(const EncoderPass& pass, const Sites& site_gradient,
                Eigen::VectorXd& gradient) const;

 private:
  struct Blocks;
  EncoderShape shape_;
  Eigen::VectorXd parameters_;
};

}  // namespace spikevi
