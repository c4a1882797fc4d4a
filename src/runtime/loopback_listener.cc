#include "runtime/loopback_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "core/filesystem.h"

namespace moatless::runtime {

core::Result<int> ListenOnLoopback(std::uint16_t port, std::string_view what) {
  const std::string where =
      "listen on 127.0.0.1:" + std::to_string(port) + " for " + std::string(what);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::ErrnoStatus(where + ": socket", errno);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    const core::Status failed = core::ErrnoStatus(where, errno);
    ::close(fd);
    return failed;
  }
  return fd;
}

core::Result<std::uint16_t> LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return core::ErrnoStatus("getsockname", errno);
  }
  if (addr.sin_family != AF_INET) return core::InternalError("not an IPv4 socket");
  return static_cast<std::uint16_t>(ntohs(addr.sin_port));
}

}  // namespace moatless::runtime
