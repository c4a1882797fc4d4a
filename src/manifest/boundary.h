// Boundaries of apps: the permissions boundary every role of an app in a stage gets, and which of
// a function's policy statements that boundary makes dead.
//
// The operator sets a boundary per app and stage (`moatless boundaries set`); without one,
// DefaultBoundary confines the app to its own resources in its own stage: its secrets
// (secret:STAGE/APP/*), its functions and queues (APP_STAGE_*), secretsmanager:GetRandomPassword
// (no resource) and sts:GetCallerIdentity. The
// manifest never names a boundary, so a deployer cannot widen it.
//
// DeadStatements finds Allow statements of an identity policy that the boundary can never let
// take effect: for every action and resource the statement names, no Allow statement of the
// boundary has an action pattern and a resource pattern that any one request could match both
// of (wildcards are compared as languages: `secretsmanager:Get*` and `secretsmanager:*Value`
// overlap). It answers "dead" only when it is sure: statements with NotAction/NotResource, and
// boundaries with NotAction/NotResource or conditions, are treated as possibly live, and a
// boundary's Deny statements are not used to prove anything. Policy variables (${...}) count as
// `*`. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace moatless::manifest {

std::string DefaultBoundary(std::string_view account_id, std::string_view app,
                            std::string_view stage);

struct DeadStatement {
  std::size_t index = 0;  // in the policy's Statement array
  std::string statement;  // the statement as JSON
};

// Both documents are IAM policy JSON that ParsePolicy accepts (kInvalidArgument otherwise).
core::Result<std::vector<DeadStatement>> DeadStatements(std::string_view policy,
                                                        std::string_view boundary);

// Whether some string matches both glob patterns (`*`: any run, `?`: one character).
bool GlobsIntersect(std::string_view a, std::string_view b);

}  // namespace moatless::manifest
