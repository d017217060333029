// Waiting on a condition with a deadline: the only way tests wait.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace tq::testing {

// Polls `condition` every `step` until it holds (true) or `timeout` passes
// (false). Bounded in time and so in count.
inline bool WaitUntil(
    const std::function<bool()>& condition, std::chrono::milliseconds timeout,
    std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);  // poll interval, not a fixed wait
  }
}

}  // namespace tq::testing
