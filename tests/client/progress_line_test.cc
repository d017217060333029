#include "client/progress_line.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace tq {

TEST_CASE("FormatEta shows minutes and seconds, hours when needed",
          "[progress]") {
  CHECK(FormatEta(0) == "0:00");
  CHECK(FormatEta(7) == "0:07");
  CHECK(FormatEta(6.2) == "0:07");  // rounds up: never promise too early
  CHECK(FormatEta(754) == "12:34");
  CHECK(FormatEta(3723) == "1:02:03");
}

TEST_CASE("FormatEta says --:-- when the ETA is unknown", "[progress]") {
  CHECK(FormatEta(-1) == "--:--");
  CHECK(FormatEta(std::nan("")) == "--:--");
  CHECK(FormatEta(std::numeric_limits<double>::infinity()) == "--:--");
  CHECK(FormatEta(1e9) == "--:--");
}

TEST_CASE("FormatProgressLine shows done, dead, total, rate and ETA",
          "[progress]") {
  BatchProgress p;
  p.total = 1000;
  p.done = 400;
  p.dead = 100;
  p.queued = 500;
  CHECK(FormatProgressLine(p, 50.0, 10) ==
        "[#####.....] 400 done  100 dead / 1000  50.0 tasks/s  ETA 0:10");
}

TEST_CASE("FormatProgressLine has no ETA before there is a rate",
          "[progress]") {
  BatchProgress p;
  p.total = 10;
  p.queued = 10;
  CHECK(FormatProgressLine(p, 0.0, 4) ==
        "[....] 0 done  0 dead / 10  0.0 tasks/s  ETA --:--");
}

TEST_CASE("FormatProgressLine fills the bar and mentions cancelled tasks",
          "[progress]") {
  BatchProgress p;
  p.total = 3;
  p.done = 1;
  p.dead = 1;
  p.cancelled = 1;
  CHECK(FormatProgressLine(p, 2.5, 6) ==
        "[######] 1 done  1 dead  1 cancelled / 3  2.5 tasks/s  ETA 0:00");
}

TEST_CASE("FormatProgressLine copes with an unknown total", "[progress]") {
  BatchProgress p;
  CHECK(FormatProgressLine(p, 0.0, 3) ==
        "[...] 0 done  0 dead / 0  0.0 tasks/s  ETA --:--");
}

}  // namespace tq
