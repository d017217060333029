// PeerInFlight (broker/peer_limits.h): the per-peer limit on requests
// received and not yet answered, with tags in place of the peers' seqs.
#include "broker/peer_limits.h"

#include <catch2/catch.hpp>

namespace tq {
namespace {

constexpr Millis kMaxAge{60'000};
constexpr Millis kBackoff{1000};

TEST_CASE("InFlightRequestsBeyondTheLimitAreRefused", "[peer_limits]") {
  PeerInFlight limit(3, kMaxAge, kBackoff);
  const TimePoint now{};
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    CHECK(limit.Begin("a", seq, now).has_value());
  }
  CHECK_FALSE(limit.Begin("a", 4, now).has_value());
  CHECK(limit.outstanding("a") == 3);
  // Another peer has its own limit.
  CHECK(limit.Begin("b", 1, now).has_value());
}

TEST_CASE("AnAnswerFreesTheSlotOfItsRequestAndGivesBackItsSeq",
          "[peer_limits]") {
  PeerInFlight limit(2, kMaxAge, kBackoff);
  const TimePoint now{};
  // A hostile peer reuses its seqs: the tags still tell the requests apart.
  const auto first = limit.Begin("a", 7, now);
  const auto second = limit.Begin("a", 7, now);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(*first != *second);
  CHECK((*first & PeerInFlight::kTagBit) != 0);
  CHECK_FALSE(limit.Begin("a", 8, now));

  // A message that answers no request (seq 7 is the peer's, not a tag;
  // another peer's tag) frees nothing.
  CHECK_FALSE(limit.Answered("a", 7));
  CHECK_FALSE(limit.Answered("b", *first));
  CHECK(limit.outstanding("a") == 2);

  CHECK(limit.Answered("a", *second) == 7u);
  CHECK_FALSE(limit.Answered("a", *second));  // once only
  CHECK(limit.outstanding("a") == 1);
  CHECK(limit.Begin("a", 9, now));
  CHECK(limit.Answered("a", *first) == 7u);
}

TEST_CASE("AFullQueueRefusesThePeerForTheBackoff", "[peer_limits]") {
  PeerInFlight limit(8, kMaxAge, kBackoff);
  TimePoint now{};
  limit.QueueFull("a", now);
  CHECK_FALSE(limit.Begin("a", 1, now));
  now += kBackoff - Millis(1);
  CHECK_FALSE(limit.Begin("a", 1, now));
  CHECK(limit.Begin("b", 1, now));
  now += Millis(1);
  const auto tag = limit.Begin("a", 1, now);
  REQUIRE(tag);
  // Answered and nothing else outstanding: the peer is forgotten.
  CHECK(limit.Answered("a", *tag) == 1u);
  CHECK(limit.tracked() == 1);  // "b"
}

TEST_CASE("AnUnansweredRequestFreesItsSlotAfterTheMaxAge", "[peer_limits]") {
  PeerInFlight limit(1, kMaxAge, kBackoff);
  TimePoint now{};
  const auto lost = limit.Begin("a", 1, now);
  REQUIRE(lost);
  CHECK_FALSE(limit.Begin("a", 2, now + kMaxAge - Millis(1)));
  CHECK(limit.Begin("a", 3, now + kMaxAge));
  // The late answer of the dropped one no longer matches.
  CHECK_FALSE(limit.Answered("a", *lost));
}

TEST_CASE("ForgetDropsAPeersRequests", "[peer_limits]") {
  PeerInFlight limit(1, kMaxAge, kBackoff);
  const auto tag = limit.Begin("a", 1, TimePoint{});
  REQUIRE(tag);
  limit.Forget("a");
  CHECK(limit.outstanding("a") == 0);
  CHECK(limit.tracked() == 0);
  CHECK_FALSE(limit.Answered("a", *tag));
}

}  // namespace
}  // namespace tq
