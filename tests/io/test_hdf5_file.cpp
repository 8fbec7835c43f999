#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "spikevi/error.hpp"
#include "spikevi/io/hdf5_file.hpp"
#include "support/test_support.hpp"

namespace spikevi {
namespace {

using testing::TempDir;
using ElementClass = Hdf5File::ElementClass;
using ElementType = Hdf5File::ElementType;

// The message of the InputError that `action` throws ("" when it throws none).
template <class Action>
std::string input_error(Action action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  return "";
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' lacks '" << part << "'";
}

TEST(Hdf5File, RoundTripsDatasetsWithShapesAndClasses) {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  const std::vector<double> doubles = {1.5, -2.0, 3.25, 4.0, 5.0, 6.0};
  const std::vector<std::int32_t> int32s = {1, -2, 3};
  const std::vector<std::int64_t> int64s = {std::int64_t{1} << 40, -7};
  {
    Hdf5File file = Hdf5File::create(path);
    file.write_doubles("/x", doubles, {2, 3}, {1, 3});
    file.write_int32("/y", int32s, {3});
    file.write_int64("z", int64s, {2});
    file.close();
  }
  const Hdf5File file = Hdf5File::open_read(path);
  EXPECT_EQ(file.shape("/x"), (Hdf5File::Dims{2, 3}));
  EXPECT_EQ(file.element_class("/x"), ElementClass::kFloat);
  EXPECT_EQ(file.element_class("/y"), ElementClass::kInteger);
  EXPECT_EQ(file.read_doubles("/x"), doubles);
  EXPECT_EQ(file.read_integers("/y"), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(file.read_doubles("/y"), (std::vector<double>{1.0, -2.0, 3.0}));
  EXPECT_EQ(file.read_integers("/z"), int64s);
}

TEST(Hdf5File, ReadsRowsOfTheFirstDimension) {
  TempDir dir;
  const std::string path = dir.file("rows.h5");
  std::vector<std::int64_t> values(4 * 2 * 3);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int64_t>(i);
  Hdf5File file = Hdf5File::create(path);
  file.write_int64("/chunked", values, {4, 2, 3}, {1, 2, 3});
  file.write_int64("/contiguous", values, {4, 2, 3});
  for (const std::string name : {"/chunked", "/contiguous"}) {
    const std::vector<std::int64_t> rows = file.read_integers(name, 1, 2);
    EXPECT_EQ(rows, std::vector<std::int64_t>(values.begin() + 6, values.begin() + 18)) << name;
    EXPECT_TRUE(file.read_doubles(name, 4, 0).empty()) << name;
  }
  const std::string error = input_error([&] { file.read_doubles("/chunked", 3, 2); });
  EXPECT_TRUE(contains(error, "rows.h5: /chunked: rows [3, 5) are outside its extent [4,2,3]"));
}

TEST(Hdf5File, ConvertsBetweenStoredAndMemoryTypes) {
  TempDir dir;
  Hdf5File file = Hdf5File::create(dir.file("types.h5"));
  const std::vector<std::int64_t> small = {0, 7, 255};
  file.write_int64("/u8", small, {3}, {}, ElementType::kUint8);
  file.write_int64("/u16", std::vector<std::int64_t>{0, 65535}, {2}, {}, ElementType::kUint16);
  file.write_doubles("/f32", std::vector<double>{0.5, -1.25}, {2}, {}, ElementType::kFloat32);
  EXPECT_EQ(file.read_integers("/u8"), small);
  EXPECT_EQ(file.read_integers("/u16"), (std::vector<std::int64_t>{0, 65535}));
  EXPECT_EQ(file.read_doubles("/f32"), (std::vector<double>{0.5, -1.25}));
  EXPECT_EQ(file.element_class("/f32"), ElementClass::kFloat);
  EXPECT_TRUE(contains(input_error([&] { file.read_integers("/f32"); }),
                       "/f32: has a non-integer element type"));
}

// Without mpi_io, read_*_collective is a serial read of the same rows (in the stored type,
// converted in memory); tests/io/mpi_dataset.cpp runs it collectively.
TEST(Hdf5File, ReadsRowsInTheStoredTypeWithoutMpiIo) {
  TempDir dir;
  const std::string path = dir.file("stored.h5");
  std::vector<std::int64_t> values(4 * 2 * 3);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 250 - static_cast<std::int64_t>(i);
  Hdf5File file = Hdf5File::create(path);
  const std::pair<std::string, ElementType> types[] = {{"u8", ElementType::kUint8},
                                                       {"u16", ElementType::kUint16},
                                                       {"i32", ElementType::kInt32},
                                                       {"i64", ElementType::kInt64}};
  for (const auto& [name, type] : types) {
    file.write_int64("/chunked_" + name, values, {4, 2, 3}, {1, 2, 3}, type);
    file.write_int64("/contiguous_" + name, values, {4, 2, 3}, {}, type);
  }
  file.write_doubles("/f32", std::vector<double>{0.5, -1.25, 2.0, 4.0}, {2, 2}, {},
                     ElementType::kFloat32);
  EXPECT_FALSE(file.last_read_was_collective());
  for (const auto& [name, type] : types) {
    for (const std::string& dataset : {"/chunked_" + name, "/contiguous_" + name}) {
      EXPECT_EQ(file.read_integers_collective(dataset, 1, 2), file.read_integers(dataset, 1, 2))
          << dataset;
      EXPECT_EQ(file.read_integers_collective(dataset, 1, 2),
                std::vector<std::int64_t>(values.begin() + 6, values.begin() + 18))
          << dataset;
      EXPECT_EQ(file.read_doubles_collective(dataset, 3, 1), file.read_doubles(dataset, 3, 1))
          << dataset;
      EXPECT_TRUE(file.read_integers_collective(dataset, 4, 0).empty()) << dataset;
    }
  }
  EXPECT_EQ(file.read_doubles_collective("/f32", 1, 1), (std::vector<double>{2.0, 4.0}));
  EXPECT_FALSE(file.last_read_was_collective());
  EXPECT_EQ(file.last_collective_read().io_mode, "serial");
  EXPECT_TRUE(contains(input_error([&] { file.read_integers_collective("/chunked_u8", 3, 2); }),
                       "stored.h5: /chunked_u8: rows [3, 5) are outside its extent [4,2,3]"));
  EXPECT_TRUE(contains(input_error([&] { file.read_integers_collective("/f32", 0, 1); }),
                       "stored.h5: /f32: has a non-integer element type"));
  EXPECT_TRUE(contains(input_error([&] { file.read_doubles_collective("/nope", 0, 1); }),
                       "stored.h5: /nope: does not exist"));
}

TEST(Hdf5File, MpiIoNeedsMpiToBeInitialised) {
  TempDir dir;
  const std::string path = dir.file("serial.h5");
  Hdf5File::create(path).close();
  EXPECT_THROW(Hdf5File::open_read(path, {.mpi_io = true}), std::logic_error);
  EXPECT_THROW(Hdf5File::create(dir.file("other.h5"), {.mpi_io = true}), std::logic_error);
}

TEST(Hdf5File, HandlesScalarAndEmptyDatasets) {
  TempDir dir;
  Hdf5File file = Hdf5File::create(dir.file("empty.h5"));
  file.write_doubles("/scalar", std::vector<double>{2.5}, {});
  file.write_int32("/empty", std::vector<std::int32_t>{}, {0});
  EXPECT_TRUE(file.shape("/scalar").empty());
  EXPECT_EQ(file.read_doubles("/scalar"), std::vector<double>{2.5});
  EXPECT_EQ(file.shape("/empty"), Hdf5File::Dims{0});
  EXPECT_TRUE(file.read_integers("/empty").empty());
}

TEST(Hdf5File, CreatesIntermediateGroupsAndListsChildrenByName) {
  TempDir dir;
  Hdf5File file = Hdf5File::create(dir.file("groups.h5"));
  file.write_doubles("/a/b/zeta", std::vector<double>{1.0}, {1});
  file.write_doubles("/a/b/alpha", std::vector<double>{1.0}, {1});
  EXPECT_TRUE(file.exists("/"));
  EXPECT_TRUE(file.exists("/a"));
  EXPECT_TRUE(file.exists("a/b/zeta"));
  EXPECT_FALSE(file.exists("/a/x/y"));
  EXPECT_FALSE(file.exists("/a/b/zeta/below_a_dataset"));
  EXPECT_EQ(file.list_children("/a/b"), (std::vector<std::string>{"alpha", "zeta"}));
  EXPECT_TRUE(contains(input_error([&] { file.list_children("/a/b/zeta"); }),
                       "groups.h5: /a/b/zeta: cannot open as a group"));
  file.remove("/a/b/zeta");
  EXPECT_FALSE(file.exists("/a/b/zeta"));
}

TEST(Hdf5File, AttributesRoundTripAndAreReplaced) {
  TempDir dir;
  const std::string path = dir.file("attrs.h5");
  {
    Hdf5File file = Hdf5File::create(path);
    file.write_doubles("/d", std::vector<double>{1.0}, {1});
    file.write_double_attribute("/d", "w", 1.0);
    file.write_double_attribute("/d", "w", 0.25);
    file.write_double_attribute("/", "w", 2.0);
    file.write_string_attribute("/d", "kind", "poisson");
    file.write_string_attribute("/d", "gone", "x");
    file.remove_attribute("/d", "gone");
  }
  const Hdf5File file = Hdf5File::open_read(path);
  EXPECT_TRUE(file.has_attribute("/d", "w"));
  EXPECT_FALSE(file.has_attribute("/d", "gone"));
  EXPECT_EQ(file.read_double_attribute("/d", "w"), 0.25);
  EXPECT_EQ(file.read_double_attribute("/", "w"), 2.0);
  EXPECT_EQ(file.read_string_attribute("/d", "kind"), "poisson");
  EXPECT_TRUE(contains(input_error([&] { file.read_double_attribute("/d", "kind"); }),
                       "attrs.h5: /d: attribute kind is not a number"));
  EXPECT_TRUE(contains(input_error([&] { file.read_double_attribute("/d", "missing"); }),
                       "attrs.h5: /d: attribute missing does not exist"));
}

TEST(Hdf5File, NamesFileAndObjectInEveryError) {
  TempDir dir;
  const std::string path = dir.file("errors.h5");
  Hdf5File file = Hdf5File::create(path);
  file.write_doubles("/x", std::vector<double>{1.0, 2.0}, {2});
  EXPECT_EQ(input_error([&] { file.shape("/nope"); }), path + ": /nope: does not exist");
  EXPECT_TRUE(
      contains(input_error([&] { file.write_doubles("/x", std::vector<double>{1.0}, {1}); }),
               path + ": /x: already exists"));
  EXPECT_TRUE(
      contains(input_error([&] { file.write_doubles("/y", std::vector<double>{1.0}, {2}); }),
               path + ": /y: 1 values for extent [2]"));
  EXPECT_TRUE(contains(input_error([&] { file.read_doubles("/a_group_is_missing/x"); }),
                       "/a_group_is_missing/x: does not exist"));
  file.close();
  file.close();
  EXPECT_TRUE(contains(input_error([&] { file.exists("/x"); }), "the file is closed"));
}

TEST(Hdf5File, RefusesMissingTextTruncatedAndDirectoryPaths) {
  TempDir dir;
  const std::string missing = dir.file("missing.h5");
  EXPECT_EQ(input_error([&] { Hdf5File::open_read(missing); }), missing + ": no such file");

  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "trial,bin,neuron,count\n0,0,0,1\n";
  EXPECT_TRUE(contains(input_error([&] { Hdf5File::open_read(text); }),
                       text + ": not a readable HDF5 file"));

  const std::string truncated = dir.file("truncated.h5");
  {
    Hdf5File file = Hdf5File::create(truncated);
    file.write_doubles("/x", std::vector<double>(4096, 1.0), {4096});
  }
  std::filesystem::resize_file(truncated, std::filesystem::file_size(truncated) / 2);
  EXPECT_TRUE(contains(input_error([&] { Hdf5File::open_read(truncated); }),
                       truncated + ": not a readable HDF5 file"));

  EXPECT_TRUE(contains(input_error([&] { Hdf5File::open_read(dir.path().string()); }),
                       "not a readable HDF5 file (a directory)"));
}

TEST(Hdf5File, CreateTruncatesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("again.h5");
  Hdf5File::create(path).write_doubles("/old", std::vector<double>{1.0}, {1});
  const Hdf5File file = Hdf5File::create(path);
  EXPECT_FALSE(file.exists("/old"));
}

}  // namespace
}  // namespace spikevi
