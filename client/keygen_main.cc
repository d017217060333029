// tq-keygen: makes a CURVE key pair for a tq broker, worker or client.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "broker/authorized_keys.h"
#include "common/curve_keys.h"
#include "common/version.h"

namespace tq {
namespace {

constexpr const char* kProgram = "tq-keygen";
constexpr int kExitWriteFailed = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter =
    "Writes DIR/NAME.key_secret (both keys, mode 0600: it stays on the machine "
    "that uses it) and DIR/NAME.key (public key and metadata: copy it into the "
    "broker's --authorized-keys directory). A broker's own key needs no role.\n"
    "\n"
    "Examples:\n"
    "  tq-keygen broker --dir /etc/tq\n"
    "  tq-keygen it-box --role worker --countries IT\n"
    "  tq-keygen alice --role submit\n"
    "  tq-keygen ops --role admin --role submit\n"
    "\n"
    "Exit codes: 0 ok, 1 a file could not be written, 2 usage error.";

struct Args {
  std::string name;
  std::string dir = ".";
  std::vector<std::string> roles;
  std::string countries;
  bool force = false;
};

int Fail(int code, const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  return code;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ",";
    out += item;
  }
  return out;
}

int Run(const Args& args) {
  if (!IsValidKeyName(args.name)) {
    return Fail(kExitUsage, "NAME '" + args.name +
                                "' must be 1-64 of A-Z a-z 0-9 . _ - and not "
                                "start with . or -");
  }
  auto roles = ParseRoles(Join(args.roles));
  if (!roles.ok()) return Fail(kExitUsage, roles.status().message());
  auto countries = ParseCountries(args.countries);
  if (!countries.ok()) {
    return Fail(kExitUsage, "--countries: " + countries.status().message());
  }
  if (!countries->empty() && !roles->Has(Role::kWorker)) {
    return Fail(kExitUsage,
                "--countries limits a worker key: add --role worker");
  }

  std::error_code ec;
  std::filesystem::create_directories(args.dir, ec);
  if (ec)
    return Fail(kExitWriteFailed,
                "cannot create " + args.dir + ": " + ec.message());
  const std::string base = args.dir + "/" + args.name;
  const std::string secret_path = base + kSecretKeySuffix;
  const std::string public_path = base + kPublicKeySuffix;
  if (!args.force) {
    for (const std::string& path : {secret_path, public_path}) {
      if (Exists(path)) {
        return Fail(kExitUsage,
                    path +
                        " already exists; --force replaces the key pair (the "
                        "old key then stops working)");
      }
    }
  }

  auto cert = GenerateCurveCert();
  if (!cert.ok()) return Fail(kExitWriteFailed, cert.status().message());
  cert->SetMeta(kMetaName, args.name);
  if (!roles->empty()) cert->SetMeta(kMetaRoles, roles->ToString());
  if (!countries->empty()) cert->SetMeta(kMetaCountries, Join(*countries));

  // The secret first: a public key without its secret is of no use.
  Status s =
      SaveCurveCert(*cert, secret_path, /*with_secret=*/true, args.force);
  if (!s.ok()) return Fail(kExitWriteFailed, s.message());
  s = SaveCurveCert(*cert, public_path, /*with_secret=*/false, args.force);
  if (!s.ok()) return Fail(kExitWriteFailed, s.message());

  std::cout << "wrote " << secret_path
            << "  (secret, mode 0600: keep it on the machine that uses it)\n"
            << "wrote " << public_path
            << "  (public: copy it into the broker's --authorized-keys "
               "directory)\n"
            << "name: " << args.name << "\n"
            << "roles: " << (roles->empty() ? "none" : roles->ToString())
            << "\n";
  if (!countries->empty()) {
    std::cout << "countries: " << Join(*countries) << " (and generic)\n";
  }
  std::cout << "public key: " << cert->public_key << "\n";
  return 0;
}

}  // namespace
}  // namespace tq

int main(int argc, char** argv) {
  using namespace tq;
  Args args;
  CLI::App app{"Make a CURVE key pair for tq (ZeroMQ certificate format)."};
  app.add_option("NAME", args.name,
                 "key name: the file stem and the name the broker logs")
      ->required();
  app.add_option("--dir", args.dir, "directory to write the two files in")
      ->capture_default_str();
  app.add_option("--role", args.roles,
                 "worker, submit or admin; repeat or comma-separate for more")
      ->allow_extra_args(false);  // --role worker NAME: NAME is no role
  app.add_option("--countries", args.countries,
                 "worker keys: countries served besides generic, e.g. IT,DE "
                 "(default: all)");
  app.add_flag("--force", args.force, "replace existing files");
  app.footer(kFooter);
  app.set_version_flag("--version", VersionText("tq-keygen"));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return Run(args);
}
