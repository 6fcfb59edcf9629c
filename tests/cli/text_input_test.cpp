// read_text_input (cli/text_input.h): a file's text with the editor's trailing newline dropped; a
// missing file and a text past the size limit (a device that never ends, as /dev/zero) are errors.
#include "cli/text_input.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "ember/error.h"
#include "support/test_data.h"

namespace ember::cli {
namespace {

std::string error_of(const std::string& path, size_t max_bytes, ErrorCode want) {
  try {
    read_text_input(path, "the prompt", max_bytes);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), want);
    return e.what();
  }
  return "no error";
}

TEST(TextInput, ReadsTheTextWithoutTheLastNewline) {
  const std::string path = (test::temp_dir("text_input") / "prompt.txt").string();
  std::ofstream(path) << "line one\nline two\n";
  EXPECT_EQ(read_text_input(path, "the prompt"), "line one\nline two");
  EXPECT_EQ(read_text_input(path, "the prompt", 18), "line one\nline two");  // exactly the limit
}

TEST(TextInput, MissingFilesAndTextPastTheLimitAreErrors) {
  const std::string path = (test::temp_dir("text_input") / "long.txt").string();
  std::ofstream(path) << std::string(100, 'x');
  EXPECT_EQ(error_of(path, 99, ErrorCode::kInvalidArgument),
            "'" + path + "' holds more than 99 B: too much for the prompt");
  EXPECT_EQ(error_of("/dev/zero", size_t{1} << 20, ErrorCode::kInvalidArgument),
            "'/dev/zero' holds more than 1.00 MiB: too much for the prompt");
  EXPECT_NE(error_of(path + ".missing", 99, ErrorCode::kIo).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace ember::cli
