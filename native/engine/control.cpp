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
//
// Who may talk (checked with SO_PEERCRED at accept, before anything is read):
// the engine's own uid and root. Everyone else gets one "ERR refused: ..." line
// and is closed at once; nothing it sent is read. The connection-level replies
// ("ERR ...", then the engine closes) are:
//   ERR refused: uid U is not the engine's owner (uid O) or root
//   ERR busy: 8 clients connected        (every slot taken by an active client)
//   ERR idle: closed to make room for a new client after N ms without a request
//   ERR timeout: no complete request line within 2 s
// So no client of any uid can hold the socket: other uids never get a slot,
// a slot idle for kEvictAfter is given to the next newcomer, and every slot
// expires kLineTimeout after its last complete line.
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine.h"

namespace engine {
namespace {
constexpr std::size_t kMaxLine = 256;
constexpr std::size_t kMaxClients = 8;
constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kLineTimeout = 2000 * kMs;  // from accept or the last complete line
constexpr std::uint64_t kEvictAfter = 250 * kMs;    // idle this long: the slot goes to a newcomer
constexpr int kAcceptBurst = 64;                    // per wake-up, so a flood cannot starve clients
constexpr int kMaxPollMs = 500;                     // notice running() == false without a wake byte

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
  std::uint64_t last_line_ns;  // accept time, then the time of each complete line
};

// Best effort, never blocks: a peer that is not reading just misses the line.
void say(int fd, const std::string& line) {
  const std::string msg = line + "\n";
  (void)send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void say_and_close(int fd, const std::string& line) {
  say(fd, line);
  close(fd);
}

// "" when the peer may use the socket, else the refusal line to send it.
std::string refusal_for(int fd, uid_t owner) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return std::string("ERR refused: cannot read the peer's credentials: ") + std::strerror(errno);
  if (cred.uid == owner || cred.uid == 0) return "";
  return "ERR refused: uid " + std::to_string(cred.uid) + " is not the engine's owner (uid " +
         std::to_string(owner) + ") or root";
}

// Frees the slot idle the longest if it has been idle at least kEvictAfter.
bool evict_idlest(std::vector<Client>& clients, std::uint64_t now) {
  auto it = std::min_element(clients.begin(), clients.end(), [](const Client& a, const Client& b) {
    return a.last_line_ns < b.last_line_ns;
  });
  if (it == clients.end() || now - it->last_line_ns < kEvictAfter) return false;
  say_and_close(it->fd, "ERR idle: closed to make room for a new client after " +
                            std::to_string((now - it->last_line_ns) / kMs) + " ms without a request");
  clients.erase(it);
  return true;
}

void accept_pending(int listen_fd, uid_t owner, std::vector<Client>& clients) {
  for (int k = 0; k < kAcceptBurst; ++k) {
    const int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;  // EAGAIN: backlog drained; anything else is retried at the next poll
    const std::string refusal = refusal_for(c, owner);
    if (!refusal.empty()) {
      say_and_close(c, refusal);
      continue;
    }
    const std::uint64_t now = now_ns();
    if (clients.size() >= kMaxClients && !evict_idlest(clients, now)) {
      say_and_close(c, "ERR busy: " + std::to_string(clients.size()) + " clients connected");
      continue;
    }
    clients.push_back({c, {}, now});
  }
}

// Reads what is there and answers every complete line. False: the caller closes it.
bool serve_client(Client& cl) {
  char tmp[512];
  const ssize_t n = recv(cl.fd, tmp, sizeof(tmp), 0);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  cl.buf.append(tmp, static_cast<std::size_t>(n));
  std::size_t nl;
  while ((nl = cl.buf.find('\n')) != std::string::npos) {
    const std::string reply = control_handle(cl.buf.substr(0, nl)) + "\n";
    cl.buf.erase(0, nl + 1);
    cl.last_line_ns = now_ns();
    const ssize_t w = send(cl.fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w != static_cast<ssize_t>(reply.size())) return false;
  }
  if (cl.buf.size() > kMaxLine) {
    say(cl.fd, "error line too long");
    return false;
  }
  return true;
}

// Milliseconds until the first client's line deadline, at most kMaxPollMs.
int poll_timeout_ms(const std::vector<Client>& clients, std::uint64_t now) {
  std::uint64_t wait = static_cast<std::uint64_t>(kMaxPollMs) * kMs;
  for (const auto& c : clients) {
    const std::uint64_t due = c.last_line_ns + kLineTimeout;
    wait = std::min(wait, due > now ? due - now : 0);
  }
  return static_cast<int>((wait + kMs - 1) / kMs);
}
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
  // Non-blocking: accept_pending drains the backlog until EAGAIN.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 64) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void control_serve(int listen_fd, int wake_fd) {
  pthread_setname_np(pthread_self(), "hftmem-ctl");
  const uid_t owner = geteuid();  // SO_PEERCRED reports the peer's effective uid too
  std::vector<Client> clients;
  std::vector<pollfd> pfds;
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_fd, POLLIN, 0});
    pfds.push_back({listen_fd, POLLIN, 0});  // always: a full house refuses, it never stops accepting
    for (const auto& c : clients) pfds.push_back({c.fd, POLLIN, 0});
    if (poll(pfds.data(), pfds.size(), poll_timeout_ms(clients, now_ns())) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfds[0].revents || !running()) break;
    std::vector<Client> kept;
    const std::uint64_t now = now_ns();
    for (std::size_t i = 0; i < clients.size(); ++i) {
      Client& cl = clients[i];
      bool keep = !pfds[i + 2].revents || serve_client(cl);
      if (keep && now - std::min(now, cl.last_line_ns) >= kLineTimeout) {
        say(cl.fd, "ERR timeout: no complete request line within " +
                                      std::to_string(kLineTimeout / 1'000'000'000) + " s");
        keep = false;
      }
      if (keep)
        kept.push_back(std::move(cl));
      else
        close(cl.fd);
    }
    clients.swap(kept);
    if (pfds[1].revents & POLLIN) accept_pending(listen_fd, owner, clients);  // after: pfds match clients
  }
  for (auto& c : clients) close(c.fd);
}

}  // namespace engine
