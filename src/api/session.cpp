// ember::Session and ember::Generation: the C++ API over the engine's Generator.
#include "ember/session.h"

#include "api/llm_impl.h"
#include "engine/generator.h"

namespace ember {

struct Session::Impl {
  Impl(std::shared_ptr<Llm> model, const SessionOptions& options)
      : llm(std::move(model)),
        draft(options.draft_model),
        generator(*llm->impl().model, *llm->impl().tokenizer,
                  GeneratorOptions{.context = llm->info().context,
                                   .kv_type = llm->impl().kv_type,
                                   .reuse_prefix = options.reuse_prefix,
                                   .draft_model = draft ? draft->impl().model.get() : nullptr,
                                   .draft_mutex = draft ? &draft->impl().forward_mutex : nullptr},
                  &llm->impl().forward_mutex) {}

  std::shared_ptr<Llm> llm;
  std::shared_ptr<Llm> draft;  // declared before the generator, which uses its model
  Generator generator;
  uint64_t epoch = 0;  // bumped by every generate(): an older Generation reads as finished
};

std::string_view finish_reason_name(FinishReason reason) noexcept {
  // OpenAI's finish_reason where one exists.
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kEndOfGeneration: return "stop";
    case FinishReason::kMaxTokens: return "length";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kMaxTime: return "time";
    case FinishReason::kContextFull: return "context";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

// --- Generation --------------------------------------------------------------------------------

Generation::Generation(Session* session) : session_(session), epoch_(session->impl_->epoch) {}
Generation::Generation(Generation&& other) noexcept : session_(other.session_), epoch_(other.epoch_) {
  other.session_ = nullptr;
}
Generation& Generation::operator=(Generation&& other) noexcept {
  if (this != &other) {
    end_generation();
    session_ = other.session_;
    epoch_ = other.epoch_;
    other.session_ = nullptr;
  }
  return *this;
}
Generation::~Generation() { end_generation(); }

void Generation::end_generation() noexcept {
  if (live()) session_->impl_->generator.cancel();
  session_ = nullptr;
}

bool Generation::live() const noexcept { return session_ != nullptr && session_->impl_->epoch == epoch_; }

bool Generation::next(GeneratedToken& token) { return live() && session_->impl_->generator.next(token); }

const GenerationStats& Generation::stats() const noexcept {
  static const GenerationStats kEnded{.finish = FinishReason::kCancelled};
  return live() ? session_->impl_->generator.stats() : kEnded;
}

const std::string& Generation::text() const noexcept {
  static const std::string kNone;
  return live() ? session_->impl_->generator.text() : kNone;
}

// --- Session -----------------------------------------------------------------------------------

Session::Session(std::shared_ptr<Llm> llm, const SessionOptions& options) {
  if (!llm) fail(ErrorCode::kInvalidArgument, "Session needs a loaded model (the Llm pointer is null)");
  impl_ = std::make_unique<Impl>(std::move(llm), options);
}

Session::~Session() = default;

Generation Session::generate(std::string_view prompt, const GenerateOptions& options) {
  const std::vector<int32_t> tokens = impl_->llm->tokenize(prompt, options.add_special, options.parse_special);
  return generate(std::span<const int32_t>(tokens), options);
}

Generation Session::generate(std::span<const int32_t> prompt_tokens, const GenerateOptions& options) {
  impl_->generator.start(prompt_tokens, options);
  ++impl_->epoch;
  return Generation(this);
}

GenerationStats Session::generate(std::string_view prompt, const GenerateOptions& options,
                                  const std::function<bool(const GeneratedToken&)>& on_token) {
  Generation generation = generate(prompt, options);
  GeneratedToken token;
  bool listening = static_cast<bool>(on_token);
  while (generation.next(token)) {
    if (listening && !on_token(token)) {  // told to stop: cancel, and call it no more
      listening = false;
      cancel();
    }
  }
  return generation.stats();
}

void Session::cancel() noexcept { impl_->generator.cancel(); }

void Session::reset() {
  impl_->generator.reset();
  ++impl_->epoch;
}

std::span<const int32_t> Session::cached_tokens() const noexcept { return impl_->generator.cached_tokens(); }

const std::shared_ptr<Llm>& Session::llm() const noexcept { return impl_->llm; }

}  // namespace ember
