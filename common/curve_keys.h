// CURVE keys on disk, in the ZeroMQ certificate format that czmq's zcert
// writes (ZPL, rfc.zeromq.org/spec:4): a `metadata` section of name = "value"
// lines and a `curve` section with `public-key` and, in the secret file only,
// `secret-key`, each a 40-character Z85 string. NAME.key holds the public key
// (safe to copy anywhere); NAME.key_secret holds both (mode 0600).
//
// Also the few lines that put keys on a ZeroMQ socket, so every binary sets
// them the same way. Nothing here is stateful; every function is thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tq {

inline constexpr size_t kZ85KeyLength = 40;  // 32 bytes in Z85
inline constexpr const char* kPublicKeySuffix = ".key";
inline constexpr const char* kSecretKeySuffix = ".key_secret";

// Metadata names tq gives meaning to.
inline constexpr const char* kMetaName = "name";
inline constexpr const char* kMetaRoles = "roles";          // "worker,submit"
inline constexpr const char* kMetaCountries = "countries";  // "IT,DE"

struct CurveCert {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; empty when loaded from a public file
  // In file order; names are unique.
  std::vector<std::pair<std::string, std::string>> metadata;

  bool has_secret() const { return !secret_key.empty(); }
  // The value of a metadata entry, or "" when absent.
  std::string Meta(std::string_view name) const;
  void SetMeta(const std::string& name, const std::string& value);
};

// libzmq was built with CURVE (libsodium): zmq_has("curve").
bool CurveAvailable();

// True for 40 characters of the Z85 alphabet that decode to 32 bytes.
bool IsZ85Key(std::string_view text);

// A fresh key pair (zmq_curve_keypair), no metadata. Unavailable without
// CURVE support in libzmq.
Result<CurveCert> GenerateCurveCert();

// The ZPL text of the public (with_secret = false) or secret certificate, with
// czmq's comment header. Metadata values must not contain '"' or a newline
// (InvalidArgument otherwise; ZPL has no escapes).
Result<std::string> FormatCurveCert(const CurveCert& cert, bool with_secret);

// Parses certificate text. `origin` names the source in error messages, which
// read "<origin>:<line>: <what is wrong>" (Corruption). A certificate without
// a valid public key is refused; a secret key, if present, must be valid and
// must match the public key.
Result<CurveCert> ParseCurveCert(std::string_view text,
                                 const std::string& origin);

// Reads and parses a certificate file (NotFound, IoError, Corruption).
Result<CurveCert> LoadCurveCert(const std::string& path);

// Loads a certificate that must hold a secret key (e.g. for --key): refuses a
// public-only file (naming the _secret file to use instead) and a file that
// group or others may read (like ssh: "chmod 600 FILE").
Result<CurveCert> LoadSecretCurveCert(const std::string& path);

// A public key given on a command line or in an environment variable: either
// the 40 Z85 characters themselves or the path of a certificate file.
Result<std::string> ResolvePublicKey(const std::string& key_or_path);

// Writes `path` atomically (temporary file + rename). The secret file gets
// mode 0600, the public one 0644 (less the umask). Without `overwrite`, an
// existing file is left alone and the result is InvalidArgument.
Status SaveCurveCert(const CurveCert& cert, const std::string& path,
                     bool with_secret, bool overwrite);

// The ZeroMQ side. `socket` is a libzmq socket handle (void*, e.g.
// zmq::socket_t::handle()); set these before bind/connect.
//
// Server: ZMQ_CURVE_SERVER=1, ZMQ_CURVE_SECRETKEY, ZMQ_ZAP_DOMAIN=`domain`.
// Peers are then authenticated by the ZAP handler bound in the socket's
// context (broker/zap_handler.h); without one libzmq admits any key.
Status ApplyCurveServer(void* socket, const CurveCert& own,
                        const std::string& domain);
// Client: ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY.
Status ApplyCurveClient(void* socket, const CurveCert& own,
                        const std::string& server_public_key);

}  // namespace tq
