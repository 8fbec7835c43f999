#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "spikevi/io/output_files.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

void touch(const std::string& path) { std::ofstream(path) << "data"; }

TEST(OutputFiles, RefusesAnOutputThatIsTheInputByAnyPath) {
  TempDir dir;
  touch(dir.file("data.h5"));
  fs::create_hard_link(dir.file("data.h5"), dir.file("link.h5"));
  for (const std::string& out : {dir.file("data.h5"), dir.file("./data.h5"), dir.file("link.h5")})
    EXPECT_THROW(check_output_is_not_input("--out", out, "--data", dir.file("data.h5")),
                 ConfigError)
        << out;
  // The temporary of an output is written too.
  EXPECT_THROW(check_output_is_not_input("--out", dir.file("data"), "--data", dir.file("data.tmp")),
               ConfigError);
  EXPECT_NO_THROW(
      check_output_is_not_input("--out", dir.file("fit.h5"), "--data", dir.file("data.h5")));
}

TEST(OutputFiles, AnUnwritableFolderIsAnOutputFailureAndLeavesNoProbe) {
  EXPECT_THROW(check_output_path("--out", "/proc/fit.h5", true), OutputError);
  TempDir dir;
  EXPECT_NO_THROW(check_output_path("--out", dir.file("fit.h5"), false));
  EXPECT_TRUE(fs::is_empty(dir.path()));  // the probe file is removed
  EXPECT_THROW(check_output_path("--out", dir.file("missing/fit.h5"), false), ConfigError);
}

TEST(OutputFiles, AFailedWriteIsAnOutputFailureThatLeavesNoTemporary) {
  TempDir dir;
  const std::string out = dir.file("out.h5");
  EXPECT_THROW(write_atomically(out,
                                [](const std::string& path) {
                                  Hdf5File file = Hdf5File::create(path);
                                  throw InputError(path + ": cannot write");
                                }),
               OutputError);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(temporary_path_for(out)));
}

}  // namespace
}  // namespace spikevi
