#include "spikevi/io/calibration_file.hpp"

#include <cmath>
#include <cstdio>

#include "spikevi/io/hdf5_file.hpp"

namespace spikevi {
namespace {

void write_vector(Hdf5File& file, const std::string& dataset, const std::vector<double>& values) {
  file.write_doubles(dataset, values, {values.size()});
}

void write_attributes(Hdf5File& file, const std::string& object,
                      const std::map<std::string, std::string>& attributes) {
  for (const auto& [key, value] : attributes) file.write_string_attribute(object, key, value);
}

// "coverage_50" for level 0.5.
std::string level_name(const std::string& prefix, double level) {
  return prefix + std::to_string(static_cast<int>(std::lround(100 * level)));
}

}  // namespace

void write_sbc_groups(Hdf5File& file, const std::string& prefix,
                      const std::vector<SbcGroup>& groups) {
  for (const SbcGroup& g : groups) {
    const std::string path = prefix + "/" + g.name;
    file.create_group(path);
    const RankTest& t = g.test;
    file.write_string_attribute(path, "verdict", verdict_name(t.verdict));
    file.write_double_attribute(path, "chi_square", t.chi_square);
    file.write_double_attribute(path, "chi_square_dof", t.chi_square_dof);
    file.write_double_attribute(path, "chi_square_p_value", t.chi_square_p_value);
    file.write_double_attribute(path, "design_effect", t.design_effect);
    file.write_double_attribute(path, "effective_count", t.effective_count);
    file.write_double_attribute(path, "outside_band", t.outside_band ? 1.0 : 0.0);
    file.write_double_attribute(path, "mean_z", t.shape.mean_z);
    file.write_double_attribute(path, "outer_z", t.shape.outer_z);
    file.write_int64(
        path + "/ranks",
        std::span<const std::int64_t>(g.ranks.data(), static_cast<std::size_t>(g.ranks.size())),
        {static_cast<std::size_t>(g.ranks.rows()), static_cast<std::size_t>(g.ranks.cols())});
    file.write_strings(path + "/names", g.names);
    file.write_int64(path + "/histogram", t.histogram, {t.histogram.size()});
    write_vector(file, path + "/ecdf_grid", t.ecdf_grid);
    write_vector(file, path + "/ecdf_difference", t.ecdf_difference);
    write_vector(file, path + "/band_lower", t.band_lower);
    write_vector(file, path + "/band_upper", t.band_upper);
  }
}

void write_sbc(const std::string& path, const SbcRecord& r) {
  Hdf5File file = Hdf5File::create(path);
  write_attributes(file, "/", r.provenance);
  file.write_string_attribute("/", "family", r.family);
  file.write_double_attribute("/", "replicates", r.replicates);
  file.write_double_attribute("/", "draws", r.draws);
  file.write_double_attribute("/", "bins", r.bins);
  file.write_double_attribute("/", "trial_bins", r.trial_bins);
  file.write_double_attribute("/", "seed", r.seed);
  file.write_double_attribute("/", "variance_inflation", r.variance_inflation);
  file.write_double_attribute("/", "alpha", r.alpha);
  file.write_double_attribute("/", "seconds", r.seconds);
  file.write_string_attribute("/", "dynamics", r.dynamics);
  if (r.dynamics == "prior") {
    file.write_double_attribute("/", "dynamics_prior_scale", r.dynamics_prior_scale);
    file.write_double_attribute("/", "dynamics_prior_dof", r.dynamics_prior_dof);
  }
  file.create_group("/config");
  write_attributes(file, "/config", r.configuration);
  file.create_group("/sbc");
  write_sbc_groups(file, "/sbc", r.groups);
  file.close();
}

void write_family_check(const std::string& path, const FamilyCheckRecord& r) {
  Hdf5File file = Hdf5File::create(path);
  write_attributes(file, "/", r.provenance);
  file.write_double_attribute("/", "replicates", r.replicates);
  file.write_double_attribute("/", "draws", r.draws);
  file.write_double_attribute("/", "bins", r.bins);
  file.write_double_attribute("/", "trials", r.trials);
  file.write_double_attribute("/", "spikes", r.spikes);
  const double gm = r.families.at(0).elbo, mf = r.families.at(1).elbo;
  file.write_double_attribute("/", "elbo_gauss_markov", gm);
  file.write_double_attribute("/", "elbo_mean_field", mf);
  file.write_double_attribute("/", "elbo_gain", gm - mf);
  file.write_double_attribute("/", "elbo_gain_per_spike",
                              r.spikes > 0 ? (gm - mf) / r.spikes : NAN);
  file.write_double_attribute("/", "variance_ratio_median", r.ratio_median);
  file.write_double_attribute("/", "variance_ratio_p10", r.ratio_p10);
  file.write_double_attribute("/", "variance_ratio_p90", r.ratio_p90);
  write_vector(file, "/variance_ratio", r.variance_ratios);
  file.create_group("/config");
  write_attributes(file, "/config", r.configuration);
  for (const FamilyCheckEntry& f : r.families) {
    const std::string group = "/families/" + f.family;
    file.create_group(group);
    file.write_double_attribute(group, "elbo", f.elbo);
    if (!f.groups.empty()) {
      file.write_string_attribute(group, "verdict", verdict_name(f.groups.front().test.verdict));
      file.write_double_attribute(group, "chi_square_p_value",
                                  f.groups.front().test.chi_square_p_value);
    }
    for (std::size_t l = 0; l < f.levels.size(); ++l) {
      file.write_double_attribute(group, level_name("coverage_", f.levels[l]), f.coverage[l]);
      file.write_double_attribute(group, level_name("nominal_", f.levels[l]), f.nominal[l]);
    }
    file.create_group(group + "/sbc");
    write_sbc_groups(file, group + "/sbc", f.groups);
  }
  file.close();
}

}  // namespace spikevi
