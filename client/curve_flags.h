// --broker-key and --key, the CURVE flags of every client binary (tq-worker,
// tq-submit, tq-ctl), also read from $TQ_BROKER_KEY and $TQ_KEY (the flag
// wins), and the keys they name, as the client library takes them.
#pragma once

#include <string>

#include "common/status.h"
#include "tq/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tq {

inline constexpr const char* kBrokerKeyEnvVar = "TQ_BROKER_KEY";
inline constexpr const char* kKeyEnvVar = "TQ_KEY";

// What the flags say, as given. Both empty: no CURVE.
struct CurveFlags {
  std::string broker_key;  // the broker's public key: Z85 or a key file
  std::string key;         // this client's NAME.key_secret file
};

// Adds --broker-key and --key to `app`, writing into `*flags` (which must
// outlive the parse), with $TQ_BROKER_KEY and $TQ_KEY read at parse time.
void AddCurveFlags(CLI::App& app, CurveFlags* flags);

// What needs no file: the two go together. InvalidArgument with the message
// the program prints after its name.
Status ValidateCurveFlags(const CurveFlags& flags);

// The keys the flags name, or none when neither is given. After
// ValidateCurveFlags: the broker's public key (ResolvePublicKey), then this
// client's key pair (LoadSecretCurveCert: a public-only file names the
// _secret file to use; a secret file group or others may read is refused).
// Every failure is InvalidArgument, its message naming the flag.
Result<CurveClientKeys> CurveKeysFromFlags(const CurveFlags& flags);

}  // namespace tq
