// CancelOnInterrupt: the SIGINT handler and its lock-free state.
#include "cli/interrupt.h"

#include <signal.h>

#include <atomic>

namespace ember::cli {
namespace {

std::atomic<CancelOnInterrupt::CancelFn> g_cancel{nullptr};
std::atomic<void*> g_target{nullptr};
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<CancelOnInterrupt::CancelFn>::is_always_lock_free &&
                  std::atomic<void*>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "read and written in a signal handler");
struct sigaction g_previous_sigint {};

extern "C" void cancel_on_sigint(int sig) {
  if (!g_interrupted.exchange(true)) {
    if (const CancelOnInterrupt::CancelFn cancel = g_cancel.load(); cancel != nullptr) cancel(g_target.load());
    return;
  }
  ::sigaction(sig, &g_previous_sigint, nullptr);
  ::raise(sig);  // pending until this handler returns (SIGINT is blocked in it), then the old one runs
}

}  // namespace

CancelOnInterrupt::CancelOnInterrupt(CancelFn cancel, void* target) {
  g_interrupted.store(false);
  g_target.store(target);
  g_cancel.store(cancel);
  ::sigaction(SIGINT, nullptr, &g_previous_sigint);
  if (g_previous_sigint.sa_handler == SIG_IGN) return;
  struct sigaction action {};
  action.sa_handler = cancel_on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a write to stdout under way continues
  installed_ = ::sigaction(SIGINT, &action, nullptr) == 0;
}

CancelOnInterrupt::~CancelOnInterrupt() {
  if (installed_) ::sigaction(SIGINT, &g_previous_sigint, nullptr);
  g_cancel.store(nullptr);
  g_target.store(nullptr);
}

bool CancelOnInterrupt::interrupted() const noexcept { return g_interrupted.load(); }

}  // namespace ember::cli
