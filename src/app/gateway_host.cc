#include "app/gateway_host.h"

#include "gateway/api_config.h"

namespace moatless::app {

GatewayHost::GatewayHost(Deps deps)
    : deps_(std::move(deps)),
      keys_(deps_.db, deps_.env.random(), deps_.env.clock()),
      usage_(deps_.db, deps_.env.clock()),
      pool_(static_cast<std::size_t>(deps_.threads)) {
  gateway_ = std::make_unique<gateway::Gateway>(
      gateway::Gateway::Deps{.functions = *this,
                             .keys = keys_,
                             .usage = usage_,
                             .clock = deps_.env.clock(),
                             .blocking = pool_,
                             .authenticator = &deps_.authenticator,
                             .audit = &deps_.audit,
                             .log = deps_.log,
                             .metrics = deps_.metrics},
      deps_.options);
  flusher_ = std::thread([this] { FlushLoop(); });
}

core::Status GatewayHost::Start() {
  RETURN_IF_ERROR(gateway_->LoadWaf());
  auto apis = gateway::ApiStore::LoadAll(deps_.db);
  if (!apis.ok()) {
    deps_.log.Error("gateway APIs could not be loaded; none is served", {{"error", apis.status()}});
  } else {
    for (const gateway::ApiConfig& api : *apis) Apply(api);
  }
  return core::Status::Ok();
}

GatewayHost::~GatewayHost() { Stop(); }

void GatewayHost::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = stopping_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  pool_.join();  // requests still on the pool finish before the gateway goes
  if (core::Status s = usage_.Flush(); !s.ok()) {
    deps_.log.Error("gateway quota counts could not be written", {{"error", s}});
  }
}

void GatewayHost::Apply(const gateway::ApiConfig& config) {
  if (core::Status s = gateway_->Apply(config); !s.ok()) {
    deps_.log.Error("gateway API not served",
                    {{"app", config.app}, {"stage", config.stage}, {"error", s}});
    return;
  }
  deps_.log.Info("gateway API served", {{"app", config.app},
                                        {"stage", config.stage},
                                        {"version", config.version},
                                        {"routes", config.routes.size()}});
}

core::Result<runtime::InvokeResult> GatewayHost::Invoke(std::string_view function,
                                                        std::int64_t version, std::string payload,
                                                        std::string request_id) {
  FunctionHost* host = functions_.load();
  if (host == nullptr) return core::UnavailableError("functions cannot run on this host");
  ASSIGN_OR_RETURN(const runtime::FunctionConfig config,
                   host->Resolve(function, std::to_string(version)));
  return host->Invoke(config, std::move(payload), std::move(request_id));
}

void GatewayHost::FlushLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, deps_.flush_interval, [this] { return stopping_; });
    lock.unlock();
    if (core::Status s = usage_.Flush(); !s.ok()) {
      deps_.log.Error("gateway quota counts could not be written", {{"error", s}});
    }
    lock.lock();
  }
}

}  // namespace moatless::app
