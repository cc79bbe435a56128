// hftmem-engine: the demo trading engine the hftmem inspector is toured on.
//
//   hftmem-engine [--scenario NAME]... [--spin] [--tick-rate N]
//                 [--control NAME] [--duration SECONDS] [--list-scenarios]
//
// Threads: main (signals, --duration), hftmem-md (producer), hftmem-strat
// (strategy, the hot path), hftmem-ctl (control socket).
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "control.h"
#include "engine.h"

namespace {

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "hftmem-engine: %s\n", msg.c_str());
  return 2;
}

bool parse_u64(const char* s, std::uint64_t& out) {
  if (s == nullptr || *s == '\0' || *s == '-') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  engine::Config cfg;
  std::string control_name = "hftmem-engine-" + std::to_string(getpid());
  std::uint64_t duration_s = 0;
  std::uint64_t initial = 0;

  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (a == "--list-scenarios") {
      for (const auto& s : engine::kScenarios) std::printf("%-16s %s\n", s.name, s.description);
      return 0;
    } else if (a == "--spin") {
      cfg.spin = true;
    } else if (a == "--scenario") {
      const char* v = value("--scenario");
      if (!v) return usage_error("--scenario needs a NAME");
      const int idx = engine::scenario_index(v);
      if (idx < 0) return usage_error(std::string("unknown scenario '") + v + "'");
      initial |= std::uint64_t{1} << idx;
    } else if (a == "--tick-rate") {
      const char* v = value("--tick-rate");
      if (!parse_u64(v, cfg.tick_rate) || cfg.tick_rate == 0 || cfg.tick_rate > 4'000'000)
        return usage_error("--tick-rate needs an integer in 1..4000000");
    } else if (a == "--control") {
      const char* v = value("--control");
      if (!v || !*v || std::strlen(v) > 100) return usage_error("--control needs a NAME (1..100 chars)");
      control_name = v;
    } else if (a == "--duration") {
      const char* v = value("--duration");
      if (!parse_u64(v, duration_s)) return usage_error("--duration needs a whole number of seconds");
    } else {
      return usage_error("unknown argument '" + a + "' (try --list-scenarios)");
    }
  }

  // All allocations in the main malloc arena (brk, shows as [heap]) so the
  // fragmentation scenario is visible there; blocks up to 1 MiB stay in the
  // heap instead of becoming mmaps.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);

  engine::init_stats();
  for (int i = 0; i < engine::kNumScenarios; ++i)
    if (initial & (std::uint64_t{1} << i)) engine::set_scenario(i, true);

  const int listen_fd = engine::control_listen(control_name);
  if (listen_fd < 0) {
    if (errno == EADDRINUSE)
      std::fprintf(stderr, "hftmem-engine: control socket %s already in use by another engine\n",
                   control_name.c_str());
    else
      std::fprintf(stderr, "hftmem-engine: control socket %s: %s\n", control_name.c_str(),
                   std::strerror(errno));
    return 2;
  }
  int wake[2];
  if (pipe(wake) != 0) {
    std::fprintf(stderr, "hftmem-engine: pipe: %s\n", std::strerror(errno));
    return 2;
  }

  // Signals are taken synchronously by the main thread only.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::thread strategy([&] { engine::run_strategy(cfg); });
  std::thread producer([&] { engine::run_producer(cfg); });
  std::thread control([&] { engine::control_serve(listen_fd, wake[0]); });

  std::printf("hftmem-engine pid=%d control=@%s\n", static_cast<int>(getpid()), control_name.c_str());
  std::fflush(stdout);

  const std::uint64_t t0 = engine::now_ns();
  for (;;) {
    timespec ts{0, 100'000'000};
    const int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (duration_s && engine::now_ns() - t0 >= duration_s * 1'000'000'000ull) break;
  }

  engine::request_stop();
  const char b = 'x';
  (void)!write(wake[1], &b, 1);
  producer.join();
  strategy.join();
  control.join();
  close(listen_fd);
  close(wake[0]);
  close(wake[1]);
  return 0;
}
