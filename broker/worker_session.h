// A connected worker as the broker sees it.
//
// Session states: a Hello creates a session in kActive; Credit{pause} moves it
// to kDraining (no more tasks). It ends (and is erased) on Goodbye, on a
// disconnect, when it is silent for heartbeat_interval * liveness, or when a
// new Hello with the same worker id replaces it. Ending requeues what it held,
// except what the replacing Hello says it still holds.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace tq {

using SessionId = uint64_t;

enum class WorkerState { kActive, kDraining };

struct WorkerSession {
  SessionId id = 0;
  std::string peer;  // ZeroMQ routing id
  std::string worker_id;
  std::string country;
  std::string country_source;
  std::vector<std::string> queues;  // in dispatch order
  std::string hostname;
  std::string peer_address;
  uint32_t concurrency = 1;
  WorkerState state = WorkerState::kActive;

  // Credit: how many more tasks the worker asked for. Invariant:
  // credit + in_flight.size() <= concurrency.
  uint32_t credit = 0;
  std::unordered_map<uint64_t, uint64_t> in_flight;  // task id -> token
  bool in_ready_list = false;

  TimePoint last_seen{};  // any message refreshes it
  TimePoint last_sent{};
  uint64_t tasks_done = 0;
};

}  // namespace tq
