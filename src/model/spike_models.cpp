// The catalogue of spike models by name (spike_model.hpp).
#include <algorithm>

#include "spikevi/error.hpp"
#include "spikevi/model/spike_model.hpp"

namespace spikevi {

// Each built-in model's factory, defined in its own file under src/model/spike/.
std::shared_ptr<const SpikeModel> make_poisson_spike_model();
std::shared_ptr<const SpikeModel> make_negative_binomial_spike_model();
std::shared_ptr<const SpikeModel> make_bernoulli_spike_model();
std::shared_ptr<const SpikeModel> make_softplus_poisson_spike_model();

const SpikeModelCatalogue& builtin_spike_models() {
  static const SpikeModelCatalogue catalogue = [] {
    SpikeModelCatalogue models;
    models.add(make_poisson_spike_model());
    models.add(make_negative_binomial_spike_model());
    models.add(make_bernoulli_spike_model());
    models.add(make_softplus_poisson_spike_model());
    return models;
  }();
  return catalogue;
}

std::shared_ptr<const SpikeModel> poisson_spike_model() {
  static const std::shared_ptr<const SpikeModel> poisson = builtin_spike_models().get("poisson");
  return poisson;
}

namespace {

std::vector<std::string> names_of(const SpikeModel& model) {
  std::vector<std::string> names{model.name()};
  for (const std::string& alias : model.aliases()) names.push_back(alias);
  return names;
}

}  // namespace

void SpikeModelCatalogue::add(std::shared_ptr<const SpikeModel> model) {
  if (!model) throw ConfigError("spike model catalogue: no model given");
  for (const std::string& name : names_of(*model))
    if (find(name))
      throw ConfigError("spike model catalogue: the name '" + name + "' is taken already");
  for (const auto& other : models_)
    if (other->simulation_code() == model->simulation_code())
      throw ConfigError("spike model catalogue: " + model->name() + " and " + other->name() +
                        " have the same simulation code " +
                        std::to_string(model->simulation_code()));
  for (const RowParameterSpec& spec : model->row_parameters())
    if (spec.name.empty() || !(spec.prior_sd > 0) || !(spec.lower < spec.upper))
      throw ConfigError("spike model " + model->name() + ": row parameter '" + spec.name +
                        "' needs a name, a prior SD > 0 and lower < upper");
  models_.push_back(std::move(model));
}

std::shared_ptr<const SpikeModel> SpikeModelCatalogue::find(const std::string& name) const {
  for (const auto& model : models_) {
    const std::vector<std::string> names = names_of(*model);
    if (std::find(names.begin(), names.end(), name) != names.end()) return model;
  }
  return nullptr;
}

std::shared_ptr<const SpikeModel> SpikeModelCatalogue::get(const std::string& name,
                                                           const std::string& option) const {
  if (auto model = find(name)) return model;
  throw ConfigError(option + " must be " + choices() + " (got '" + name + "')");
}

std::shared_ptr<const SpikeModel> SpikeModelCatalogue::with_link(const std::string& name,
                                                                 const std::string& link) const {
  const std::shared_ptr<const SpikeModel> model = get(name);
  if (link.empty() || link == "exp") return model;
  if (link != "softplus") throw ConfigError("--link must be exp or softplus (got '" + link + "')");
  if (model->name().ends_with("-softplus")) return model;
  if (auto variant = find(model->name() + "-softplus")) return variant;
  throw ConfigError("--link softplus: " + model->name() +
                    " has no softplus variant (a model named " + model->name() +
                    "-softplus); poisson has one");
}

std::string SpikeModelCatalogue::choices() const {
  std::string text;
  for (std::size_t i = 0; i < models_.size(); ++i) {
    const SpikeModel& model = *models_[i];
    if (i > 0) text += i + 1 == models_.size() ? " or " : ", ";
    const std::vector<std::string> aliases = model.aliases();
    text += aliases.empty() ? model.name() : aliases.front() + " (" + model.name() + ")";
  }
  return text;
}

}  // namespace spikevi
