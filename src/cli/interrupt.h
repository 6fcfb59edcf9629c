// CancelOnInterrupt: Ctrl-C for the commands that generate — the first SIGINT cancels the running
// generation, a second one ends the process.
#pragma once

namespace ember::cli {

// While alive, the first SIGINT calls cancel(target) from the signal handler (so `cancel` must be
// async-signal-safe: an atomic store, as Generator::cancel and Session::cancel are); a second one
// goes to the handler that was there before — main()'s temporary-file cleanup, which re-raises
// it — so Ctrl-C twice always ends the process. A SIGINT ignored on purpose (a background job)
// stays ignored. ThreadPool workers block signals, so the handler runs on the generating thread.
// One at a time per process.
class CancelOnInterrupt {
 public:
  using CancelFn = void (*)(void* target) noexcept;
  CancelOnInterrupt(CancelFn cancel, void* target);
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

  // Whether a SIGINT came while this was installed.
  bool interrupted() const noexcept;

 private:
  bool installed_ = false;
};

}  // namespace ember::cli
