// The client the end-to-end tests talk to the broker with.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "tq/client.h"

namespace tq::testing {

// Short timeouts with retries: the broker is on loopback, but the machine
// may be busy running other tests.
inline std::unique_ptr<Client> Connect(
    const std::string& endpoint,
    std::chrono::milliseconds request_timeout = std::chrono::seconds(3),
    int attempts = 5) {
  ClientOptions o;
  o.endpoint = endpoint;
  o.request_timeout = request_timeout;
  o.attempts = attempts;
  auto c = Client::Connect(o);
  REQUIRE(c.ok());
  return std::move(c.value());
}

// Every result of the batch by URL, waiting (bounded) until it is complete.
inline std::map<std::string, TaskResult> CollectByUrl(
    Client& client, const std::string& batch,
    std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  std::map<std::string, TaskResult> results;
  Status st = client.WaitForResults(
      batch,
      [&](const TaskResult& r) {
        results[r.url] = r;
        return true;
      },
      nullptr, deadline);
  INFO(st.message());
  CHECK(st.ok());
  return results;
}

}  // namespace tq::testing
