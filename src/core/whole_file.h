// Reading a whole small file (a template, a key, a context) into a string, with one error shape.
#pragma once

#include <string>
#include <string_view>

namespace ember {

// Everything `fd` holds until end of file, `name` naming it in errors. Throws Error(kIo)
// "cannot read <what> '<name>': <reason>" (a directory: "Is a directory").
std::string read_whole_fd(int fd, std::string_view name, std::string_view what);

// The whole file at `path` (a regular file, a pipe, /dev/stdin). Throws Error(kIo) "cannot open
// <what> '<path>': <reason>" or read_whole_fd's.
std::string read_whole_file(const std::string& path, std::string_view what);

}  // namespace ember
