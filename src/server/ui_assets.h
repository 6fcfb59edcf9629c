// The chat UI's files, embedded into the binary at build time (cmake/EmbedAssets.cmake writes the
// table from src/server/ui/): `ember serve` answers GET / and each file's path from memory, so the
// UI works offline and nothing is read from the file system.
#pragma once

#include <cstddef>
#include <string_view>

namespace ember::server {

struct UiAsset {
  const char* path;          // "/index.html"
  const char* content_type;  // "text/html; charset=utf-8"
  const char* etag;          // W/"<first 16 hex digits of its SHA-256>" (weak: the body may be compressed)
  const unsigned char* data;
  std::size_t size;

  std::string_view bytes() const noexcept { return {reinterpret_cast<const char*>(data), size}; }
};

// Sorted by path; kUiAssetCount entries (then a null one).
extern const UiAsset kUiAssets[];
extern const std::size_t kUiAssetCount;

// The asset at `path` ("/" is "/index.html"); nullptr when there is none.
const UiAsset* find_ui_asset(std::string_view path) noexcept;

}  // namespace ember::server
