// Defaults shared by the broker, workers and clients.
#pragma once

#include <cstdint>

namespace tq {

inline constexpr uint32_t kProtocolVersion = 1;

// Heartbeats flow both ways; a peer silent for interval * liveness is lost.
inline constexpr uint32_t kDefaultHeartbeatIntervalMs = 1000;
inline constexpr uint32_t kDefaultHeartbeatLiveness = 3;

inline constexpr uint32_t kDefaultMaxAttempts = 3;
inline constexpr uint32_t kDefaultTimeLimitMs = 300'000;
// Grace on top of a task's time limit before the broker takes the lease back;
// the worker enforces the limit itself, this catches hung workers.
inline constexpr uint32_t kLeaseGraceMs = 5'000;
inline constexpr uint32_t kDefaultRetryBackoffMs = 1'000;
inline constexpr uint32_t kMaxRetryBackoffMs = 60'000;

// Application cap on one message; ZMQ_MAXMSGSIZE is set a little above it so
// anything larger is cut off by ZeroMQ before it is buffered.
inline constexpr int64_t kMaxMessageBytes = 16 * 1024 * 1024;
inline constexpr uint32_t kMaxUrlBytes = 4096;
inline constexpr uint32_t kMaxSubmitItems = 10'000;  // per Submit message

inline constexpr const char* kGenericQueue = "generic";
inline constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:7070";
inline constexpr const char* kBrokerEnvVar = "TQ_BROKER";
// The broker's own address to bind: not TQ_BROKER, which clients set.
inline constexpr const char* kListenEnvVar = "TQ_LISTEN";

}  // namespace tq
