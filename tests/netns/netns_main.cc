// Entry point of the network-namespace tests: they need CAP_SYS_ADMIN and
// CAP_NET_ADMIN (ip netns). Without them the run ends with kExitSkipped,
// which ctest reports as skipped (SKIP_RETURN_CODE), never as passed.
#define CATCH_CONFIG_RUNNER
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {
constexpr int kExitSkipped = 4;
}

int main(int argc, char** argv) {
  const std::string probe = "tqgeo-probe-" + std::to_string(getpid());
  const std::string add = "ip netns add " + probe + " 2>/dev/null";
  if (std::system(add.c_str()) != 0) {
    std::printf(
        "SKIPPED: cannot create network namespaces ('ip netns add' failed: "
        "needs root or CAP_SYS_ADMIN+CAP_NET_ADMIN, and iproute2)\n");
    return kExitSkipped;
  }
  std::system(("ip netns del " + probe).c_str());
  return Catch::Session().run(argc, argv);
}
