#include "common/log.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace tq {

Status SetupLogging(const std::string& program, const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("unknown log level '" + level +
                                   "' (trace, debug, info, warn, error, off)");
  }
  auto logger = spdlog::stderr_color_mt(program);
  // UTC with a Z, like every time tq shows: logs of hosts in different
  // zones line up, and match result lines.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %n[%P] %^%l%$ %v",
                      spdlog::pattern_time_type::utc);
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  // protobuf writes its own complaints (e.g. a string field that is not
  // UTF-8) straight to stderr, once per bad message: a hostile peer could
  // flood the log past our limiter. The codec reports every refusal itself.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*,
                                     int, const std::string& message) {
    spdlog::debug("protobuf: {}", message);
  });
  return Status::Ok();
}

}  // namespace tq
