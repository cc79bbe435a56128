// Control channel: line protocol over an abstract-namespace UNIX socket.
#pragma once

#include <string>

namespace engine {

// Binds and listens on the abstract socket "@name". Returns the fd (non-blocking), or -1
// with errno set (EADDRINUSE: another engine owns the name).
int control_listen(const std::string& name);

// Serves clients until a byte arrives on wake_fd. Runs on its own thread and
// only ever blocks in poll. Peers other than the engine's uid and root are
// refused at accept (SO_PEERCRED); at most 8 clients, each closed 2 s after
// its last complete line (see control.cpp for the replies).
void control_serve(int listen_fd, int wake_fd);

// One request line (no newline) -> one reply line (no newline).
std::string control_handle(const std::string& line);

}  // namespace engine
