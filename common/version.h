// What `--version` prints, the same on every binary.
#pragma once

#include <string>
#include <string_view>

namespace tq {

// "0.1.0", from the project() in CMakeLists.txt.
std::string TqVersion();
// The git revision built ("a1b2c3d4e5f6", "-dirty" with local changes,
// "unknown" outside a checkout).
std::string GitRevision();

// "tq-ctl 0.1.0 (git a1b2c3d4e5f6, RelWithDebInfo)" and a line each for the
// libzmq, protobuf and SQLite versions tq was built with (their headers);
// no final newline.
std::string VersionText(std::string_view program);

}  // namespace tq
