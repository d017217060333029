// What the network-namespace tests share: shell steps that must succeed,
// namespaces removed however the test ends, and commands run inside one.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace tq::testing {

inline void Sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " >/dev/null").c_str()) == 0);
}

// Namespaces made by the test, named PREFIX-ROLE-PID; deleted (with their
// veths) however it ends.
class Namespaces {
 public:
  explicit Namespaces(std::string prefix) : prefix_(std::move(prefix)) {}
  ~Namespaces() {
    for (const auto& ns : names_)
      std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
  }
  Namespaces(const Namespaces&) = delete;
  Namespaces& operator=(const Namespaces&) = delete;

  std::string Add(const std::string& role) {
    const std::string ns =
        prefix_ + "-" + role + "-" + std::to_string(getpid());
    std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
    Sh("ip netns add " + ns);
    names_.push_back(ns);
    Sh("ip -n " + ns + " link set lo up");
    return ns;
  }

 private:
  const std::string prefix_;
  std::vector<std::string> names_;
};

// Process runs a path, not a name looked up in PATH.
inline std::string IpCommand() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (access(p, X_OK) == 0) return p;
  return "ip";
}

inline std::vector<std::string> InNs(const std::string& ns,
                                     std::vector<std::string> argv) {
  argv.insert(argv.begin(), {IpCommand(), "netns", "exec", ns});
  return argv;
}

}  // namespace tq::testing
