#include "common/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <sstream>

namespace tq {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&"
    "<>()[]{}@%$#";
// Key files are a few hundred bytes; anything far bigger is not one.
constexpr size_t kMaxCertFileBytes = 64 * 1024;

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '$' || c == '-' ||
         c == '_' || c == '@' || c == '.' || c == '&' || c == '+' || c == '/';
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// What may follow a value or a bare name: spaces, then nothing or a comment.
bool OnlyCommentLeft(std::string_view rest) {
  for (char c : rest) {
    if (c == '#') return true;
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

Status SetOption(void* socket, int option, const void* value, size_t size,
                 const char* name) {
  if (zmq_setsockopt(socket, option, value, size) != 0) {
    return Status::Internal(std::string("cannot set ") + name + ": " +
                            zmq_strerror(zmq_errno()));
  }
  return Status::Ok();
}

}  // namespace

std::string CurveCert::Meta(std::string_view name) const {
  for (const auto& [k, v] : metadata) {
    if (k == name) return v;
  }
  return "";
}

void CurveCert::SetMeta(const std::string& name, const std::string& value) {
  for (auto& [k, v] : metadata) {
    if (k == name) {
      v = value;
      return;
    }
  }
  metadata.emplace_back(name, value);
}

bool CurveAvailable() { return zmq_has("curve") == 1; }

bool IsZ85Key(std::string_view text) {
  if (text.size() != kZ85KeyLength) return false;
  for (size_t group = 0; group < kZ85KeyLength; group += 5) {
    uint64_t value = 0;
    for (size_t i = group; i < group + 5; ++i) {
      size_t digit = kZ85Alphabet.find(text[i]);
      if (digit == std::string_view::npos) return false;
      value = value * 85 + digit;
    }
    if (value > 0xffffffffULL) return false;  // 85^5 > 2^32: not a 4-byte group
  }
  return true;
}

Result<CurveCert> GenerateCurveCert() {
  if (!CurveAvailable()) {
    return Status::Unavailable(
        "this libzmq was built without CURVE (libsodium) support");
  }
  char public_key[kZ85KeyLength + 1];
  char secret_key[kZ85KeyLength + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Status::Internal(std::string("zmq_curve_keypair: ") +
                            zmq_strerror(zmq_errno()));
  }
  CurveCert cert;
  cert.public_key = public_key;
  cert.secret_key = secret_key;
  return cert;
}

Result<std::string> FormatCurveCert(const CurveCert& cert, bool with_secret) {
  if (!IsZ85Key(cert.public_key)) {
    return Status::InvalidArgument("the public key is not a Z85 CURVE key");
  }
  if (with_secret && !IsZ85Key(cert.secret_key)) {
    return Status::InvalidArgument("the secret key is not a Z85 CURVE key");
  }
  std::ostringstream out;
  out << "#   ****  Generated on " << UtcNow() << " UTC by tq  ****\n";
  if (with_secret) {
    out << "#   ZeroMQ CURVE **Secret** Certificate\n"
           "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its "
           "permissions.\n";
  } else {
    out << "#   ZeroMQ CURVE Public Certificate\n"
           "#   Exchange securely, or use a secure mechanism to verify the "
           "contents\n"
           "#   of this file after exchange. A tq broker admits the key when "
           "this file\n"
           "#   is in its --authorized-keys directory.\n";
  }
  out << "\nmetadata\n";
  for (const auto& [name, value] : cert.metadata) {
    if (!IsValidName(name)) {
      return Status::InvalidArgument("metadata name '" + name +
                                     "' is not a ZPL name");
    }
    if (value.find_first_of("\"\r\n") != std::string::npos) {
      return Status::InvalidArgument("metadata " + name +
                                     " holds a quote or a newline");
    }
    out << "    " << name << " = \"" << value << "\"\n";
  }
  out << "curve\n";
  out << "    public-key = \"" << cert.public_key << "\"\n";
  if (with_secret) out << "    secret-key = \"" << cert.secret_key << "\"\n";
  return out.str();
}

Result<CurveCert> ParseCurveCert(std::string_view text,
                                 const std::string& origin) {
  CurveCert cert;
  std::string section;
  bool have_public = false;
  int line_no = 0;
  auto error = [&](const std::string& what) {
    return Status::Corruption(origin + ":" + std::to_string(line_no) + ": " +
                              what);
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    while (!line.empty() &&
           std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;

    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    if (indent < line.size() && line[indent] == '\t') {
      return error("tab in indentation (indent with 4 spaces)");
    }
    if (indent == line.size() || line[indent] == '#') continue;
    if (indent % 4 != 0) return error("indent by 4 spaces at a time");
    size_t level = indent / 4;
    size_t name_end = indent;
    while (name_end < line.size() && IsNameChar(line[name_end])) ++name_end;
    std::string name(line.substr(indent, name_end - indent));
    if (!IsValidName(name)) {
      return error("expected a name, found '" +
                   std::string(line.substr(indent)) + "'");
    }
    std::string_view rest = line.substr(name_end);
    std::string value;
    bool has_value = false;
    size_t after = 0;
    while (after < rest.size() &&
           std::isspace(static_cast<unsigned char>(rest[after]))) {
      ++after;
    }
    if (after < rest.size() && rest[after] == '=') {
      has_value = true;
      rest = rest.substr(after + 1);
      size_t start = 0;
      while (start < rest.size() &&
             std::isspace(static_cast<unsigned char>(rest[start]))) {
        ++start;
      }
      rest = rest.substr(start);
      if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
        size_t close = rest.find(rest.front(), 1);
        if (close == std::string_view::npos) {
          return error(std::string("missing closing ") + rest.front());
        }
        value = std::string(rest.substr(1, close - 1));
        if (!OnlyCommentLeft(rest.substr(close + 1))) {
          return error("unexpected text after the closing quote");
        }
      } else {
        value = Trim(rest.substr(0, rest.find('#')));
      }
    } else if (!OnlyCommentLeft(rest)) {
      return error("unexpected text '" + Trim(rest) + "' after " + name);
    }

    if (level == 0) {
      if (has_value) return error("section " + name + " takes no value");
      section = name;
      continue;
    }
    if (level > 1) return error("nested too deep under " + section);
    if (section.empty()) return error(name + " is outside any section");
    if (section == "metadata") {
      for (const auto& entry : cert.metadata) {
        if (entry.first == name) return error("metadata " + name + " repeated");
      }
      cert.metadata.emplace_back(name, value);
    } else if (section == "curve") {
      if (name == "public-key") {
        if (have_public) return error("public-key repeated");
        if (!IsZ85Key(value)) {
          return error("public-key is not a 40-character Z85 key");
        }
        cert.public_key = value;
        have_public = true;
      } else if (name == "secret-key") {
        if (!cert.secret_key.empty()) return error("secret-key repeated");
        if (!IsZ85Key(value)) {
          return error("secret-key is not a 40-character Z85 key");
        }
        cert.secret_key = value;
      }
    }
    // Other sections and names are left for later versions: zcert does too.
  }
  if (!have_public) {
    return Status::Corruption(origin + ": no curve/public-key");
  }
  if (!cert.secret_key.empty()) {
    char derived[kZ85KeyLength + 1];
    if (zmq_curve_public(derived, cert.secret_key.c_str()) != 0) {
      return Status::Unavailable(origin +
                                 ": cannot check the secret key: libzmq has "
                                 "no CURVE support");
    }
    if (cert.public_key != derived) {
      return Status::Corruption(origin +
                                ": the secret key does not belong to the "
                                "public key");
    }
  }
  return cert;
}

Result<CurveCert> LoadCurveCert(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no such file: " + path);
    return Status::IoError(Errno("cannot open", path));
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IoError(Errno("cannot read", path));
      close(fd);
      return s;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxCertFileBytes) {
      close(fd);
      return Status::TooLarge(path + ": over " +
                              std::to_string(kMaxCertFileBytes) +
                              " bytes: not a key file");
    }
  }
  close(fd);
  return ParseCurveCert(text, path);
}

Result<CurveCert> LoadSecretCurveCert(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("no such key file: " + path);
    return Status::IoError(Errno("cannot stat", path));
  }
  auto cert = LoadCurveCert(path);
  if (!cert.ok()) return cert;
  if (!cert->has_secret()) {
    std::string hint;
    const std::string suffix = kPublicKeySuffix;
    if (path.size() > suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      hint = " (its secret is in " + path + "_secret)";
    }
    return Status::InvalidArgument(path + " holds only a public key" + hint);
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o",
             static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(path + " holds a secret key but its mode " +
                                   mode + " lets others read it: chmod 600 " +
                                   path);
  }
  return cert;
}

Result<std::string> ResolvePublicKey(const std::string& key_or_path) {
  if (IsZ85Key(key_or_path)) return key_or_path;
  if (key_or_path.empty()) return Status::InvalidArgument("empty key");
  auto cert = LoadCurveCert(key_or_path);
  if (!cert.ok()) {
    if (cert.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("'" + key_or_path +
                              "' is neither a Z85 public key nor a key file");
    }
    return cert.status();
  }
  return cert->public_key;
}

Status SaveCurveCert(const CurveCert& cert, const std::string& path,
                     bool with_secret, bool overwrite) {
  auto text = FormatCurveCert(cert, with_secret);
  if (!text.ok()) return text.status();
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());  // mode 0600 from the start
  if (fd < 0) return Status::IoError(Errno("cannot create", tmp));
  auto fail = [&](const std::string& what) {
    Status s = Status::IoError(Errno(what, path));
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    return s;
  };
  const std::string& bytes = text.value();
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    written += static_cast<size_t>(n);
  }
  if (fchmod(fd, with_secret ? 0600 : 0644) != 0) return fail("cannot chmod");
  if (fsync(fd) != 0) return fail("cannot sync");
  if (close(fd) != 0) {
    fd = -1;
    return fail("cannot close");
  }
  fd = -1;
  if (overwrite) {
    if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename to");
    return Status::Ok();
  }
  // link() refuses an existing target, atomically, where rename would not.
  if (link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      unlink(tmp.c_str());
      return Status::InvalidArgument(path + " already exists");
    }
    return fail("cannot link to");
  }
  unlink(tmp.c_str());
  return Status::Ok();
}

Status ApplyCurveServer(void* socket, const CurveCert& own,
                        const std::string& domain) {
  if (!own.has_secret()) {
    return Status::InvalidArgument("the server's key has no secret part");
  }
  int one = 1;
  Status s =
      SetOption(socket, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER");
  if (!s.ok()) return s;
  s = SetOption(socket, ZMQ_CURVE_SECRETKEY, own.secret_key.data(),
                own.secret_key.size(), "ZMQ_CURVE_SECRETKEY");
  if (!s.ok()) return s;
  return SetOption(socket, ZMQ_ZAP_DOMAIN, domain.data(), domain.size(),
                   "ZMQ_ZAP_DOMAIN");
}

Status ApplyCurveClient(void* socket, const CurveCert& own,
                        const std::string& server_public_key) {
  if (!own.has_secret()) {
    return Status::InvalidArgument("the client's key has no secret part");
  }
  if (!IsZ85Key(server_public_key)) {
    return Status::InvalidArgument("the broker's key is not a Z85 public key");
  }
  Status s = SetOption(socket, ZMQ_CURVE_SERVERKEY, server_public_key.data(),
                       server_public_key.size(), "ZMQ_CURVE_SERVERKEY");
  if (!s.ok()) return s;
  s = SetOption(socket, ZMQ_CURVE_PUBLICKEY, own.public_key.data(),
                own.public_key.size(), "ZMQ_CURVE_PUBLICKEY");
  if (!s.ok()) return s;
  return SetOption(socket, ZMQ_CURVE_SECRETKEY, own.secret_key.data(),
                   own.secret_key.size(), "ZMQ_CURVE_SECRETKEY");
}

}  // namespace tq
