// The broker core's permission checks (docs/security.md): the roles each
// message type needs, batch ownership, and what a reload of the
// authorized-keys directory revokes. A broker without keys hands every
// message PeerIdentity::Unkeyed(), which may do everything.
#include <spdlog/spdlog.h>

#include "broker/broker.h"

namespace tq {
namespace {

// Role needed per message type; nullopt: no role (errors, unknown bodies,
// which the dispatcher answers as before).
std::optional<Role> NeededRole(wire::Envelope::BodyCase body) {
  using B = wire::Envelope;
  switch (body) {
    case B::kHello:
    case B::kCredit:
    case B::kHeartbeat:
    case B::kResult:
    case B::kRelease:
    case B::kGoodbye:
      return Role::kWorker;
    case B::kSubmit:
    case B::kFetchResults:
    case B::kBatchStatusRequest:
    case B::kCancelBatch:
    case B::kCancelTask:  // its batch: checked by the handler
    case B::kSubscribe:
    case B::kEventsAck:
    case B::kUnsubscribe:
    case B::kListBatches:    // a submit key sees only its own (broker_views.cc)
    case B::kTaskRequest:    // of its own batches
      return Role::kSubmit;  // or admin, for any batch
    case B::kListQueues:     // submit may too: see Authorize
    case B::kListWorkers:
    case B::kRetryDead:
    case B::kPurgeQueue:
    case B::kReloadKeys:
    case B::kReleaseWorker:
    case B::kDrainWorker:
    case B::kDisconnectWorker:
    case B::kPauseQueue:
    case B::kStatusRequest:
    case B::kListActive:
      return Role::kAdmin;
    default:
      return std::nullopt;
  }
}

const std::string* BatchOf(const wire::Envelope& env) {
  using B = wire::Envelope;
  switch (env.body_case()) {
    case B::kSubmit:
      return &env.submit().batch_id();
    case B::kFetchResults:
      return &env.fetch_results().batch_id();
    case B::kBatchStatusRequest:
      return &env.batch_status_request().batch_id();
    case B::kCancelBatch:
      return &env.cancel_batch().batch_id();
    case B::kSubscribe:
      return &env.subscribe().batch_id();
    default:
      return nullptr;
  }
}

}  // namespace

bool Broker::Authorize(const std::string& peer, const wire::Envelope& env,
                       const PeerIdentity& who) {
  if (!who.keyed) return true;
  const std::optional<Role> need = NeededRole(env.body_case());
  if (!need) return true;
  const std::string what = BodyCaseName(env.body_case());
  if (who.roles.Has(*need)) {
    const std::string* batch = BatchOf(env);
    if (batch == nullptr || who.roles.Has(Role::kAdmin) ||
        OwnsBatch(who, *batch, env.has_submit())) {
      return true;
    }
    if (env.has_subscribe() && batch->empty()) {
      Deny(peer, env.seq(), who,
           who.Describe() +
               " may follow only the batches it submitted: name one "
               "(tq-ctl events --batch ID), or use a key with the admin role");
      return false;
    }
    Deny(peer, env.seq(), who,
         who.Describe() + " may use only the batches it submitted; '" +
             batch->substr(0, 64) + "' is not one of them");
    return false;
  }
  // Admin may follow and cancel any batch (but submitting needs submit).
  if (*need == Role::kSubmit && !env.has_submit() &&
      who.roles.Has(Role::kAdmin)) {
    return true;
  }
  // Queue counts (no URLs) help a submitter see whether anyone serves its
  // queue: the queue list is open to submit keys as well as admin.
  if (env.has_list_queues() && who.roles.Has(Role::kSubmit)) return true;
  const std::string roles = who.roles.empty() ? "no role (revoked?)"
                                              : "roles " + who.roles.ToString();
  const std::string needed =
      env.has_list_queues() ? "the admin or submit role"
      : *need == Role::kSubmit && !env.has_submit()
          ? "the submit or admin role"
          : std::string("the ") + RoleName(*need) + " role";
  Deny(peer, env.seq(), who,
       who.Describe() + " (" + roles + ") lacks " + needed + " needed for " +
           what);
  return false;
}

bool Broker::OwnsBatch(const PeerIdentity& who, const std::string& batch_id,
                       bool submitting) const {
  auto it = batch_owners_.find(batch_id);
  if (it != batch_owners_.end()) return it->second == who.key_name;
  // Nobody owns it: a new batch may be taken by its first submitter; one
  // submitted before the broker had keys stays admin-only.
  return submitting && tasks_.BatchCounts(batch_id) == nullptr;
}

void Broker::Deny(const std::string& peer, uint64_t seq,
                  const PeerIdentity& who, const std::string& why) {
  ++permission_denied_;
  if (warnings_.Allow(who.key_name, "permission denied", clock_.Now())) {
    spdlog::warn("refused a message from {}: {} ({} refusals so far)",
                 who.Describe(), why, permission_denied_);
  }
  SendError(peer, seq, wire::PERMISSION_DENIED, why);
}

size_t Broker::RevokeKeys(const std::vector<RevokedKey>& revoked) {
  std::vector<std::pair<SessionId, std::string>> ending;
  for (const auto& [id, s] : sessions_.all()) {
    for (const RevokedKey& k : revoked) {
      if (!s.key_public.empty() && s.key_public == k.public_key) {
        ending.emplace_back(id, k.name);
      }
    }
  }
  for (const auto& [id, name] : ending) {
    WorkerSession* s = sessions_.Find(id);
    if (s == nullptr) continue;
    // The tasks are not at fault: back to their queues, no attempt counted.
    std::vector<uint64_t> held;
    for (const auto& [task_id, token] : s->in_flight) held.push_back(task_id);
    const std::string worker = s->worker_id;
    const std::string reason =
        "key '" + name + "' of worker " + worker + " revoked";
    for (uint64_t task_id : held) {
      TaskEntry* t = tasks_.Find(task_id);
      if (t != nullptr && t->holder == id && t->state == TaskState::kLeased) {
        Requeue(*t, reason);
      }
    }
    spdlog::warn(
        "key '{}' revoked: ending the session of worker {} ({} tasks "
        "back to their queues)",
        name, worker, held.size());
    EndSession(id, "key '" + name + "' revoked");
  }
  return ending.size();
}

void Broker::HandleReloadKeys(const std::string& peer, uint64_t seq) {
  if (!key_reloader_) {
    SendError(peer, seq, wire::INVALID_ARGUMENT,
              "this broker runs without keys (no --authorized-keys to reload)");
    return;
  }
  Result<KeyReload> reload = key_reloader_();
  if (!reload.ok()) {
    SendError(peer, seq, wire::STORE_UNAVAILABLE,
              "cannot reload the authorized keys (the old table stays): " +
                  reload.status().message());
    return;
  }
  const size_t ended = RevokeKeys(reload->revoked);
  wire::Envelope env;
  env.set_seq(seq);
  wire::KeysReloaded* r = env.mutable_keys_reloaded();
  r->set_keys(reload->keys);
  for (const RevokedKey& k : reload->revoked) r->add_revoked(k.name);
  for (const std::string& p : reload->problems) r->add_problems(p);
  for (const std::string& n : reload->added) r->add_added(n);
  for (const std::string& n : reload->removed) r->add_removed(n);
  for (const std::string& n : reload->changed) r->add_changed(n);
  r->set_sessions_ended(uint32_t(ended));
  // The requeued tasks are written: the answer waits for their commit.
  SendAfterCommit(peer, std::move(env));
}

}  // namespace tq
