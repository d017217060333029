#include "common/version.h"

#include <google/protobuf/stubs/common.h>
#include <sqlite3.h>  // header only: SQLITE_VERSION
#include <zmq.h>      // header only: ZMQ_VERSION_*

#include "tq_build_info.h"

namespace tq {

std::string TqVersion() { return TQ_VERSION; }

std::string GitRevision() { return TQ_GIT_REVISION; }

std::string VersionText(std::string_view program) {
  std::string text = std::string(program) + " " + TQ_VERSION + " (git " +
                     TQ_GIT_REVISION + ", " + TQ_BUILD_TYPE + ")\n";
  text += "libzmq " + std::to_string(ZMQ_VERSION_MAJOR) + "." +
          std::to_string(ZMQ_VERSION_MINOR) + "." +
          std::to_string(ZMQ_VERSION_PATCH) + "\n";
  text += "protobuf " +
          google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION) +
          "\n";
  // No final newline: CLI11 adds one.
  text += std::string("SQLite ") + SQLITE_VERSION;
  return text;
}

}  // namespace tq
