// The web console (tq-broker --http): pages, the JSON API under /api/v1/ and
// /metrics, served by cpp-httplib on threads of its own.
//
// It never touches the broker's loop or its SQLite connection: reads go
// through read-only connections of its own (WAL readers do not block the
// writer), and every change (submit, cancel, retry, purge) is a request to
// the broker over the ROUTER socket, made with the C++ client library, so it
// passes through the core like tq-ctl's.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "tq/client.h"

namespace tq {

struct ConsoleOptions {
  std::string address = "127.0.0.1:8080";  // HOST:PORT; port 0 picks one
  std::string token_file;  // "ROLE TOKEN" lines; required off loopback
  std::string ready_file;  // if set, "http://HOST:PORT" is written here
  std::string db_path;     // the broker's database (opened read-only)
  std::string files_dir;   // the store's files/ (content by sha256)
  // Where the console's clients reach the broker's ROUTER (bound for it by
  // the loop; see main.cc).
  std::string broker_endpoint;
  // With a CURVE broker: the broker's public key and the console's own key
  // pair, admitted by the broker as a built-in key (main.cc).
  CurveClientKeys curve;
  int threads = 4;
};

class HttpConsole {
 public:
  // Checks access (a token file off loopback), binds and starts serving.
  // InvalidArgument for a bad address or token file; Unavailable if the
  // address cannot be bound.
  static Result<std::unique_ptr<HttpConsole>> Start(
      const ConsoleOptions& options);
  // Stops accepting, finishes the requests in progress and joins.
  ~HttpConsole();
  HttpConsole(const HttpConsole&) = delete;
  HttpConsole& operator=(const HttpConsole&) = delete;

  const std::string& url() const;  // "http://127.0.0.1:8080"

  struct Impl;

 private:
  explicit HttpConsole(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tq
