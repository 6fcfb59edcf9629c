// Looking up the embedded chat UI's files (see ui_assets.h).
#include "server/ui_assets.h"

#include <algorithm>

namespace ember::server {

const UiAsset* find_ui_asset(std::string_view path) noexcept {
  if (path == "/") path = "/index.html";
  const UiAsset* end = kUiAssets + kUiAssetCount;
  const UiAsset* it =
      std::lower_bound(kUiAssets, end, path, [](const UiAsset& a, std::string_view p) { return a.path < p; });
  return it != end && it->path == path ? it : nullptr;
}

}  // namespace ember::server
