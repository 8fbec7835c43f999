#pragma once
// A spike observation model as the rest of spikevi sees it (DESIGN.md §1): one object that says
// everything that differs between Poisson, negative binomial, Bernoulli or a user's own model —
// its names, its likelihood and expectations (an ObservationModel), its link, the per-neuron
// parameters it carries beyond the readout row, and how a simulation draws its counts. Nothing
// else in spikevi switches on the model.
//
// Adding a model is one new file, src/model/spike/NAME.cpp, defining a SpikeModel (and the
// ObservationModel it makes), plus its line in builtin_spike_models() (src/model/spike_models.cpp).
// README.md "Adding a spike model" walks through the negative binomial.
#include <Eigen/Dense>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "spikevi/math/random_stream.hpp"
#include "spikevi/model/observation_model.hpp"
#include "spikevi/model/row_parameters.hpp"

namespace spikevi {

class SpikeModel {
 public:
  virtual ~SpikeModel() = default;

  // The canonical name: the fit file's and /truth's `observation` attribute, the comparison
  // table's first column, and a name --observation accepts.
  virtual std::string name() const = 0;
  // Further names --observation accepts (e.g. "negbin").
  virtual std::vector<std::string> aliases() const { return {}; }
  // One line for --help: the likelihood and its link.
  virtual std::string description() const = 0;

  // Whether E_q log p(x | eta) has a closed form under eta ~ N(mu, s2); then `closed-form` is
  // the default estimator (expectation_method.hpp), otherwise Gauss-Hermite quadrature.
  virtual bool has_closed_form() const { return false; }
  // The per-neuron parameters beyond (c_n, d_n); none by default.
  virtual std::vector<RowParameterSpec> row_parameters() const { return {}; }

  // The likelihood of as many neurons as each vector of `row_values` has entries (one vector
  // per row parameter, in the order of row_parameters(); none without them), its deterministic
  // expectations in closed form (`closed_form`, only when has_closed_form()) or by `nodes`-point
  // quadrature. Throws NumericalError for row values outside their range.
  virtual std::unique_ptr<ObservationModel> observation(
      const std::vector<Eigen::VectorXd>& row_values, bool closed_form, int nodes) const = 0;

  // The link, element-wise: E[x | eta] (expected counts; for Bernoulli the probability).
  virtual Eigen::ArrayXXd mean_of(const Eigen::ArrayXXd& eta) const = 0;
  // The offsets d_n with E[x | eta = d_n] = means_n (the fit's start; means are > 0).
  virtual Eigen::VectorXd offsets_for_means(const Eigen::ArrayXd& means) const = 0;

  // Simulation (simulation.hpp). The offsets of units whose baseline expected count per bin is
  // exp(log_expected_counts) (the identity for a log link).
  virtual Eigen::VectorXd simulated_offsets(const Eigen::VectorXd& log_expected_counts) const {
    return log_expected_counts;
  }
  // One count of a neuron given its expected count `mean` (mean_of(eta)) and its row parameter
  // values, drawn from `stream` (a fresh counter-based stream per trial and bin).
  virtual double draw(double mean, const std::vector<double>& row_values,
                      RandomStream& stream) const = 0;
  // RandomCounter::iteration of this model's count streams (purpose kSimulation): distinct for
  // every model, so that two models never share draws; codes below 100 are spikevi's own.
  virtual std::uint64_t simulation_code() const = 0;
};

// The spike models spikevi knows by name. Copyable: a program (or a test) adds its own models
// to a copy of the built-in catalogue and passes it where models are looked up by name.
class SpikeModelCatalogue {
 public:
  // ConfigError when the name, an alias or the simulation code is already taken.
  void add(std::shared_ptr<const SpikeModel> model);
  // The model with this name or alias; nullptr if there is none.
  std::shared_ptr<const SpikeModel> find(const std::string& name) const;
  // The model with this name or alias; ConfigError naming `option` and the choices otherwise.
  std::shared_ptr<const SpikeModel> get(const std::string& name,
                                        const std::string& option = "--observation") const;
  // "poisson, negbin (negative_binomial), bernoulli": what --observation accepts.
  std::string choices() const;
  // The model `name` with link `link`: "exp" (or "") is the model itself (the built-in models'
  // own link, logit for the Bernoulli); "softplus" is the model registered as NAME-softplus
  // (NAME the canonical name). ConfigError naming --link when there is no such variant.
  std::shared_ptr<const SpikeModel> with_link(const std::string& name,
                                              const std::string& link) const;
  const std::vector<std::shared_ptr<const SpikeModel>>& models() const { return models_; }

 private:
  std::vector<std::shared_ptr<const SpikeModel>> models_;
};

// Poisson, negative binomial and Bernoulli.
const SpikeModelCatalogue& builtin_spike_models();

// The built-in Poisson model (the default everywhere).
std::shared_ptr<const SpikeModel> poisson_spike_model();

}  // namespace spikevi
