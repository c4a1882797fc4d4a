#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.h"
#include "sandbox/host.h"
#include "sandbox/seccomp_policy.h"

namespace moatless::cli {

DoctorCommand::DoctorCommand(CLI::App& parent) {
  command_ = parent.add_subcommand(
      "doctor",
      "Report what isolation this host offers for functions (user namespaces, seccomp, cgroups) "
      "and what moatless will use. Exit 0 with full isolation, 1 without.");
  command_->add_flag("--insecure-allow-weak-isolation", insecure_,
                     "report what moatless would use if the operator accepted weaker isolation");
  command_->add_flag("--json", json_, "print the report as JSON");
}

int DoctorCommand::Run() {
  sandbox::HostSupport host = sandbox::ProbeHost();
  host.insecure_allowed = insecure_;
  const std::vector<std::string> missing = host.Missing();
  if (json_) {
    boost::json::array missing_json;
    for (const std::string& m : missing) missing_json.emplace_back(m);
    boost::json::array controllers;
    for (const std::string& c : host.cgroup_controllers) controllers.emplace_back(c);
    const char* cgroup = host.cgroup == sandbox::CgroupVersion::kV2   ? "v2"
                         : host.cgroup == sandbox::CgroupVersion::kV1 ? "v1"
                                                                      : "none";
    boost::json::object out{{"running_as_root", host.running_as_root},
                            {"user_namespaces", host.user_namespaces},
                            {"seccomp", host.seccomp},
                            {"cgroup", cgroup},
                            {"cgroup_root", host.cgroup_root},
                            {"cgroup_controllers", std::move(controllers)},
                            {"full_isolation", missing.empty()},
                            {"missing", std::move(missing_json)},
                            {"seccomp_denied_syscalls", sandbox::ForbiddenSyscalls().size()}};
    std::cout << boost::json::serialize(out) << "\n";
  } else {
    std::cout << host.Report();
  }
  return missing.empty() ? kExitOk : kExitRuntime;
}

}  // namespace moatless::cli
