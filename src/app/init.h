// InitializeDataDir: `moatless init` — a new node's data directory, keys and account root.
//
// Creates the data directory (0700) with its audit and master keys (0600; an existing key file
// that group or others can read is refused), applies the store's migrations, creates the account
// root and its first access key, and writes that key once to an AWS-format shared credentials
// file (0600, in a 0700 folder) under the given profile, replacing only that profile's section.
// The secret is never printed and cannot be read back. Refuses to run a second time (the root
// already has a key), so root credentials are never silently replaced. Records itself in the audit
// log. Single-threaded (the CLI).
#pragma once

#include <string>

#include "core/env.h"
#include "core/status.h"

namespace moatless::app {

struct InitOptions {
  std::string data_dir = ".moatless";
  std::string account_id = "000000000000";
  std::string credentials_file;  // required: e.g. ~/.aws/credentials
  std::string profile = "moatless";
};

struct InitResult {
  std::string root_arn;
  std::string access_key_id;
  std::string credentials_file;
  std::string profile;
};

core::Result<InitResult> InitializeDataDir(const InitOptions& options, core::Env& env);

// The text of an AWS shared credentials file with `profile`'s section set to these keys; every
// other section, comment and line is kept as it was.
std::string WithCredentialsProfile(std::string_view existing, std::string_view profile,
                                   std::string_view access_key_id,
                                   std::string_view secret_access_key);

}  // namespace moatless::app
