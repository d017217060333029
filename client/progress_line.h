// The one-line progress display of `tq-submit --wait`. Formatting only; the
// caller decides when and where to draw it.
#pragma once

#include <cstddef>
#include <string>

#include "tq/client.h"

namespace tq {

// "0:07", "12:34", "1:02:03"; "--:--" when unknown (negative, NaN, huge).
std::string FormatEta(double seconds);

// "[########............] 412 done  3 dead / 1000  52.0 tasks/s  ETA 0:11"
// The bar fills with finished tasks (done, dead, cancelled); "N cancelled"
// appears only when there are some. rate is finished tasks per second.
std::string FormatProgressLine(const BatchProgress& progress, double rate,
                               size_t bar_width = 20);

// The --wait summary: "200 done: 163 ok, 30 unreachable, 7 http_error; 0
// dead, 0 cancelled of 200" (outcomes other than ok only when there are any).
std::string FormatBatchSummary(const BatchProgress& progress);

}  // namespace tq
