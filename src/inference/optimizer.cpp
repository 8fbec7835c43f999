#include "spikevi/inference/optimizer.hpp"

namespace spikevi {
namespace {

// The natural-gradient steps of DESIGN.md §2-3: stateless.
class NaturalGradientOptimizer final : public Optimizer {
 public:
  OptimizerKind kind() const override { return OptimizerKind::kNatural; }
  std::unique_ptr<Optimizer> clone() const override {
    return std::make_unique<NaturalGradientOptimizer>(*this);
  }
  LocalStepReport local_step(const LocalProblem& problem, GaussMarkovState& state,
                             const LocalStepSettings& settings) const override {
    return cvi_local_step(problem, state, settings);
  }
  // Variational online Newton per row, rho times the row's damping (readout.hpp).
  void readout_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                    const Eigen::VectorXd& row_damping) override {
    globals.spikes = readout_natural_gradient_step(
        globals.spikes, globals.spikes_prior, stats.spikes, step.scale, step.rho * row_damping);
  }
  void row_parameter_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                          const Eigen::VectorXd& row_damping) override {
    newton_row_parameter_step(globals.spike_parameters, stats.row_parameters, step.scale, step.rho,
                              row_damping);
  }
  OptimizerState state() const override {
    OptimizerState state;
    add_mlp_state(state);
    return state;
  }
  void restore(const OptimizerState& state, int global_steps) override {
    restore_mlp(state, global_steps);
  }
};

// Adam (Kingma & Ba 2015) on the Euclidean gradients of the same parameters; it owns the moment
// estimates of the readout rows ((D+1) x N) and of the row parameters (N x P).
class AdamOptimizer final : public Optimizer {
 public:
  AdamOptimizer(const AdamSettings& local, const AdamSettings& global, int dim, int rows,
                int row_parameters)
      : local_(local), global_(global) {
    readout_.first = Eigen::ArrayXXd::Zero(dim + 1, rows);
    readout_.second = readout_.first;
    if (row_parameters > 0) {
      row_parameters_.first = Eigen::ArrayXXd::Zero(rows, row_parameters);
      row_parameters_.second = row_parameters_.first;
    }
  }
  OptimizerKind kind() const override { return OptimizerKind::kAdam; }
  std::unique_ptr<Optimizer> clone() const override {
    return std::make_unique<AdamOptimizer>(*this);
  }
  LocalStepReport local_step(const LocalProblem& problem, GaussMarkovState& state,
                             const LocalStepSettings& settings) const override {
    return adam_local_step(problem, state, settings, local_);
  }
  // Adam on w_n = (c_n, d_n) along the Euclidean gradient scale g_n - P0 (w_n - m0); the
  // precision P_n is blended as in the natural step (it is the Laplace precision reported).
  void readout_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                    const Eigen::VectorXd& row_damping) override {
    Readout& readout = globals.spikes;
    const ReadoutPrior& prior = globals.spikes_prior;
    const int p = readout.dim() + 1;
    Eigen::MatrixXd weights(p, readout.rows());
    weights << readout.C.transpose(), readout.d.transpose();
    const Eigen::MatrixXd gradient =
        step.scale * stats.spikes.gradient - prior.precision * (weights.colwise() - prior.mean);
    Eigen::ArrayXXd moved =
        readout_.step(gradient.array(), global_, global_.learning_rate * step.rho);
    moved.rowwise() *= row_damping.transpose().array();
    weights += moved.matrix();
    readout.C = weights.topRows(p - 1).transpose();
    readout.d = weights.row(p - 1).transpose();
    for (int n = 0; n < readout.rows(); ++n) {
      auto P = readout.precision.middleCols(static_cast<Eigen::Index>(n) * p, p);
      P = (1.0 - step.rho) * P +
          step.rho * (prior.precision + step.scale * stats.spikes.hessian.middleCols(
                                                         static_cast<Eigen::Index>(n) * p, p));
    }
  }
  // Along the gradient in the unconstrained coordinates (the precision is still the Newton
  // curvature, the Laplace precision reported).
  void row_parameter_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step,
                          const Eigen::VectorXd& row_damping) override {
    RowParameters& parameters = globals.spike_parameters;
    if (parameters.empty()) return;
    const Eigen::MatrixXd moves =
        row_parameters_
            .step(row_parameter_gradient(parameters, stats.row_parameters, step.scale).array(),
                  global_, global_.learning_rate)
            .matrix();
    newton_row_parameter_step(parameters, stats.row_parameters, step.scale, step.rho, row_damping,
                              &moves);
  }
  OptimizerState state() const override {
    OptimizerState state{{"readout_adam/first", readout_.first},
                         {"readout_adam/second", readout_.second}};
    if (row_parameters_.first.size() > 0) {
      state["shape_adam/first"] = row_parameters_.first;
      state["shape_adam/second"] = row_parameters_.second;
    }
    add_mlp_state(state);
    return state;
  }
  // Adam's bias correction counts the global steps taken.
  void restore(const OptimizerState& state, int global_steps) override {
    readout_.first = state.at("readout_adam/first");
    readout_.second = state.at("readout_adam/second");
    readout_.steps = global_steps;
    if (state.count("shape_adam/first")) {
      row_parameters_.first = state.at("shape_adam/first");
      row_parameters_.second = state.at("shape_adam/second");
    }
    row_parameters_.steps = global_steps;
    restore_mlp(state, global_steps);
  }

 private:
  AdamSettings local_, global_;
  AdamState readout_, row_parameters_;
};

// Zero moments of one parameter block.
void zero_moments(AdamState& state, Eigen::Index rows, Eigen::Index cols) {
  state.first = Eigen::ArrayXXd::Zero(rows, cols);
  state.second = state.first;
  state.steps = 0;
}

}  // namespace

void Optimizer::mlp_step(GlobalState& globals, const GlobalStatistics& stats, GlobalStepSize step) {
  const AdamSettings& settings = mlp_adam_;
  MlpReadout& mlp = globals.mlp;
  if (!mlp.active()) return;
  const double precision = globals.mlp_prior_precision, rate = settings.learning_rate * step.rho;
  const Eigen::ArrayXXd gradient_A = step.scale * stats.mlp.A.array() - precision * mlp.A.array();
  const Eigen::ArrayXXd gradient_W = step.scale * stats.mlp.W.array() - precision * mlp.W.array();
  const Eigen::ArrayXXd gradient_b = step.scale * stats.mlp.b.array() - precision * mlp.b.array();
  mlp.A += mlp_A_.step(gradient_A, settings, rate).matrix();
  mlp.W += mlp_W_.step(gradient_W, settings, rate).matrix();
  mlp.b += mlp_b_.step(gradient_b, settings, rate).matrix();
}

void Optimizer::add_mlp_state(OptimizerState& state) const {
  if (mlp_A_.first.size() == 0) return;
  state["mlp_adam/A_first"] = mlp_A_.first;
  state["mlp_adam/A_second"] = mlp_A_.second;
  state["mlp_adam/W_first"] = mlp_W_.first;
  state["mlp_adam/W_second"] = mlp_W_.second;
  state["mlp_adam/b_first"] = mlp_b_.first;
  state["mlp_adam/b_second"] = mlp_b_.second;
}

// Adam's bias correction counts the global steps taken (one per iteration after the first).
void Optimizer::restore_mlp(const OptimizerState& state, int global_steps) {
  if (!state.count("mlp_adam/A_first")) return;
  mlp_A_ = AdamState{state.at("mlp_adam/A_first"), state.at("mlp_adam/A_second"), global_steps};
  mlp_W_ = AdamState{state.at("mlp_adam/W_first"), state.at("mlp_adam/W_second"), global_steps};
  mlp_b_ = AdamState{state.at("mlp_adam/b_first"), state.at("mlp_adam/b_second"), global_steps};
}

std::unique_ptr<Optimizer> make_optimizer(const ModelSettings& settings, int dim, int rows,
                                          int row_parameters, int hidden) {
  std::unique_ptr<Optimizer> optimizer;
  if (settings.optimizer == OptimizerKind::kAdam)
    optimizer = std::make_unique<AdamOptimizer>(settings.local_adam, settings.global_adam, dim,
                                                rows, row_parameters);
  else
    optimizer = std::make_unique<NaturalGradientOptimizer>();
  optimizer->mlp_adam_ = settings.mlp_adam;
  if (hidden > 0) {
    OptimizerState zero;
    AdamState moments;
    zero_moments(moments, rows, hidden);
    zero["mlp_adam/A_first"] = zero["mlp_adam/A_second"] = moments.first;
    zero_moments(moments, hidden, dim);
    zero["mlp_adam/W_first"] = zero["mlp_adam/W_second"] = moments.first;
    zero_moments(moments, hidden, 1);
    zero["mlp_adam/b_first"] = zero["mlp_adam/b_second"] = moments.first;
    optimizer->restore_mlp(zero, 0);
  }
  return optimizer;
}

LocalStepReport warm_local_step(const LocalProblem& problem, GaussMarkovState& state,
                                const LocalStepSettings& settings, const Optimizer& optimizer) {
  const bool restarted = warm_start(problem, state);
  LocalStepReport report = optimizer.local_step(problem, state, settings);
  report.restarted = restarted;
  return report;
}

}  // namespace spikevi
