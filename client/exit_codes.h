// Exit codes of tq-submit and tq-ctl. When several apply, the largest wins.
#pragma once

namespace tq {

inline constexpr int kExitOk = 0;
inline constexpr int kExitTasksFailed = 1;  // --wait: some dead or cancelled
inline constexpr int kExitDeclined = 1;     // tq-ctl purge: "no" at the prompt
inline constexpr int kExitUsage = 2;        // bad flags, unreadable file
inline constexpr int kExitBadLines = 3;     // some lines skipped
inline constexpr int kExitBroker = 4;       // unreachable, or refused
inline constexpr int kExitNotFound =
    5;  // tq-ctl: no such batch/task/queue/worker
inline constexpr int kExitOutput = 6;  // --out: a result not written

}  // namespace tq
