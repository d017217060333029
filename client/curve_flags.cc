#include "client/curve_flags.h"

#include <CLI/CLI.hpp>

#include "common/curve_keys.h"

namespace tq {

void AddCurveFlags(CLI::App& app, CurveFlags* flags) {
  app.add_option("--broker-key", flags->broker_key,
                 "the broker's CURVE public key: its .key file or the 40 "
                 "Z85 characters (needs --key; see docs/security.md)")
      ->envname(kBrokerKeyEnvVar);
  app.add_option("--key", flags->key,
                 "this client's CURVE key pair, a NAME.key_secret file of "
                 "mode 0600 made by tq-keygen (needs --broker-key)")
      ->envname(kKeyEnvVar);
}

Status ValidateCurveFlags(const CurveFlags& flags) {
  if (!flags.key.empty() && flags.broker_key.empty()) {
    return Status::InvalidArgument(
        "--key (or $TQ_KEY) needs --broker-key KEY_OR_FILE (or "
        "$TQ_BROKER_KEY): the broker's public key, e.g. broker.key");
  }
  if (!flags.broker_key.empty() && flags.key.empty()) {
    return Status::InvalidArgument(
        "--broker-key (or $TQ_BROKER_KEY) needs --key FILE (or $TQ_KEY): "
        "this client's NAME.key_secret, made by tq-keygen NAME");
  }
  return Status::Ok();
}

Result<CurveClientKeys> CurveKeysFromFlags(const CurveFlags& flags) {
  if (Status s = ValidateCurveFlags(flags); !s.ok()) return s;
  if (flags.key.empty()) return CurveClientKeys{};
  if (!CurveAvailable()) {
    return Status::InvalidArgument(
        "--key: this libzmq was built without CURVE support");
  }
  auto broker = ResolvePublicKey(flags.broker_key);
  if (!broker.ok()) {
    return Status::InvalidArgument("--broker-key: " +
                                   broker.status().message());
  }
  auto own = LoadSecretCurveCert(flags.key);
  if (!own.ok()) {
    return Status::InvalidArgument("--key: " + own.status().message());
  }
  if (own->public_key == *broker) {
    return Status::InvalidArgument(
        "--broker-key is the public key of --key " + flags.key +
        " itself; give the broker's key (its broker.key file)");
  }
  CurveClientKeys keys;
  keys.broker_public_key = std::move(broker).value();
  keys.client_public_key = own->public_key;
  keys.client_secret_key = own->secret_key;
  return keys;
}

}  // namespace tq
