// AuditApi: the audit log's REST-JSON API on the service endpoint (SigV4 signing name "moatless"),
// so that operators search the log like any other authorised call:
//
//   GET  /moatless/v1/audit/records   moatless:QueryAuditLog
//          ?principal= &action= &resource= (patterns, `*` any run) &decision=allowed|denied|error
//          &since= &until= (RFC 3339 or 10m/2h/7d ago) &field=KEY=VALUE (repeatable) &limit=
//          (1..1000, default 100) &after=SEQ
//        -> {"Records": [records exactly as stored], "NextToken": "SEQ"} (NextToken only when
//           more may follow: pass it back as `after`)
//   POST /moatless/v1/audit/hash      moatless:HashAuditValue
//          body {"Value": "..."} -> {"Hmac": "hmac-sha256:<hex>"}: what a sensitive field holds
//          when that value was recorded, to search `fields` without the log storing the value
//
// Both are authorised on arn:aws:moatless:REGION:ACCOUNT:audit. The hashed value travels only in
// the request body, which is neither logged nor audited. The endpoint audits these calls like any
// other. Where the log is kept and for how long is server configuration (audit.*), not an API
// matter. Thread-safe: queries read the files; the log is thread-safe.
#pragma once

#include <string>

#include "core/clock.h"
#include "observe/audit_log.h"
#include "services/rest_service.h"

namespace moatless::app {

class AuditApi : public services::RestJsonService {
 public:
  struct Deps {
    const observe::AuditLog& audit;
    const core::Clock& clock;  // for relative since/until
    std::string region;
    std::string account_id;
  };
  explicit AuditApi(Deps deps) : deps_(std::move(deps)) {}

  std::string_view signing_name() const override { return "moatless"; }
  bool Handles(const http::Request& request) const override;
  core::Result<Target> Decode(const http::Request& request) const override;
  http::Response Run(const http::Request& request, const http::RequestContext& context,
                     const Target& target, const std::string& caller_arn) override;

 private:
  Deps deps_;
};

}  // namespace moatless::app
