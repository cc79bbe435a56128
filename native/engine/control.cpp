// Control channel server. Never on the hot path: it only flips bits in
// hftmem_engine_stats.scenarios and reads counters.
//
// Protocol (one request per line, one reply line each, several per connection):
//   list          -> ok leak use-after-free ... (all names, bit order)
//   status        -> ok pid=<pid> scenarios=<a,b|-> ticks=<n> messages=<n>
//   on NAME       -> ok NAME=on        off NAME -> ok NAME=off
//   unknown name  -> error unknown scenario 'NAME'
//   anything else -> error unknown command '...'
// Lines longer than kMaxLine get "error line too long" and the connection is
// closed. A client that does not read its replies is dropped, never waited on.
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "engine.h"

namespace engine {
namespace {
constexpr std::size_t kMaxLine = 256;
constexpr std::size_t kMaxClients = 16;

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  if (s.size() > 64) out += "...";
  return out;
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

struct Client {
  int fd;
  std::string buf;
};
}  // namespace

std::string control_handle(const std::string& raw) {
  const std::string line = trim(raw);
  const std::size_t sp = line.find_first_of(" \t");
  const std::string cmd = line.substr(0, sp);
  const std::string arg = sp == std::string::npos ? "" : trim(line.substr(sp + 1));
  if (cmd == "list" && arg.empty()) {
    std::string r = "ok";
    for (const auto& s : kScenarios) r += std::string(" ") + s.name;
    return r;
  }
  if (cmd == "status" && arg.empty()) {
    const std::uint64_t bits = scenarios_now();
    std::string names;
    for (int i = 0; i < kNumScenarios; ++i)
      if (bits & (std::uint64_t{1} << i)) names += (names.empty() ? "" : ",") + std::string(kScenarios[i].name);
    return "ok pid=" + std::to_string(load(hftmem_engine_stats.pid)) +
           " scenarios=" + (names.empty() ? "-" : names) +
           " ticks=" + std::to_string(load(hftmem_engine_stats.ticks)) +
           " messages=" + std::to_string(load(hftmem_engine_stats.messages));
  }
  if ((cmd == "on" || cmd == "off") && !arg.empty()) {
    const int idx = scenario_index(arg.c_str());
    if (idx < 0) return "error unknown scenario '" + printable(arg) + "'";
    set_scenario(idx, cmd == "on");
    return "ok " + arg + "=" + cmd;
  }
  return "error unknown command '" + printable(line) + "'";
}

int control_listen(const std::string& name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.empty() || name.size() > sizeof(addr.sun_path) - 1) {
    errno = ENAMETOOLONG;
    return -1;
  }
  addr.sun_path[0] = '\0';  // abstract namespace: no file anywhere
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 16) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void control_serve(int listen_fd, int wake_fd) {
  pthread_setname_np(pthread_self(), "hftmem-ctl");
  std::vector<Client> clients;
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_fd, POLLIN, 0});
    pfds.push_back({listen_fd, static_cast<short>(clients.size() < kMaxClients ? POLLIN : 0), 0});
    for (const auto& c : clients) pfds.push_back({c.fd, POLLIN, 0});
    if (poll(pfds.data(), pfds.size(), 500) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfds[0].revents || !running()) break;
    const std::size_t polled = pfds.size() - 2;  // clients that have a pollfd
    std::vector<bool> drop(polled, false);
    for (std::size_t i = 0; i < polled; ++i) {
      if (!pfds[i + 2].revents) continue;
      Client& cl = clients[i];
      char tmp[512];
      const ssize_t n = recv(cl.fd, tmp, sizeof(tmp), 0);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        drop[i] = true;
        continue;
      }
      cl.buf.append(tmp, static_cast<std::size_t>(n));
      std::size_t nl;
      while (!drop[i] && (nl = cl.buf.find('\n')) != std::string::npos) {
        const std::string reply = control_handle(cl.buf.substr(0, nl)) + "\n";
        cl.buf.erase(0, nl + 1);
        const ssize_t w = send(cl.fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w != static_cast<ssize_t>(reply.size())) drop[i] = true;
      }
      if (!drop[i] && cl.buf.size() > kMaxLine) {
        static const char kTooLong[] = "error line too long\n";
        (void)send(cl.fd, kTooLong, sizeof(kTooLong) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        drop[i] = true;
      }
    }
    for (std::size_t i = polled; i-- > 0;)
      if (drop[i]) {
        close(clients[i].fd);
        clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
      }
    if (pfds[1].revents & POLLIN) {  // accept last: pfds indices stay valid above
      int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) clients.push_back({c, {}});
    }
  }
  for (auto& c : clients) close(c.fd);
}

}  // namespace engine
