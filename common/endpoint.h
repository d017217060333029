// Broker endpoints as people type them: one parser for every binary, so a
// missing scheme or port, or a port out of range, gets the same message
// everywhere (ZeroMQ itself says "Invalid argument", or wraps the port).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tq {

// How an endpoint is used: a bind may ask for any port (0 or *), a connect
// needs a real one.
enum class EndpointUse { kConnect, kBind };

struct Endpoint {
  std::string host;  // "127.0.0.1", "broker.example", "[::1]", "*" (bind)
  int port = 0;      // 0: any port (bind only)
  // tcp://HOST:PORT as ZeroMQ takes it; a bind's any port is "*".
  std::string ToZmq() const;
};

// tcp://HOST:PORT with PORT in 1-65535 (a bind also takes 0 or *: a free
// port). InvalidArgument otherwise, with the expected form and an example:
//   '127.0.0.1:7070' is not a broker endpoint: expected tcp://HOST:PORT,
//   e.g. tcp://127.0.0.1:7070 (did you mean tcp://127.0.0.1:7070?)
Result<Endpoint> ParseEndpoint(std::string_view text, EndpointUse use);

// ParseEndpoint's verdict, the message prefixed by `flag` and ": " when
// `flag` is not empty.
Status CheckEndpoint(std::string_view text, EndpointUse use,
                     std::string_view flag = {});

}  // namespace tq
