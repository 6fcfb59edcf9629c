// Tokenizer: a model's vocabulary with its tokenizer (SPM, BPE or WPM) behind one interface —
// text to token ids (BOS / EOS / SEP as the vocabulary asks, special tokens parsed on request)
// and token ids back to bytes, all at once or streamed by a Detokenizer.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_reader.h"
#include "tokenizer/vocab.h"
#include "tokenizer/vocab_trie.h"

namespace ember {

struct EncodeOptions {
  // Add BOS (and EOS / SEP) where the vocabulary says to (tokenizer.ggml.add_bos_token, ...).
  bool add_special = true;
  // Control tokens written in the text (e.g. "<|im_start|>" from a chat template) become those
  // tokens. Off for untrusted text, which then can never produce a control token.
  bool parse_special = false;
};

struct DecodeOptions {
  // Control (and unknown) tokens decode to their text instead of nothing.
  bool render_special = false;
  // Drop the space SPM tokenizers put in front of a text (add_space_prefix): right when decoding a
  // text from its start, wrong when continuing one (a generation after its prompt).
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  // Throws the Vocab's errors, and Error(kUnsupported) for an unknown BPE pre-tokenizer.
  static Tokenizer from_gguf(const GgufFile& file);
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  const Vocab& vocab() const noexcept;

  // Thread-safe. Bytes that are not UTF-8 never fail: SPM spells them as byte tokens, BPE replaces
  // each by U+FFFD, WPM drops them.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;

  // Appends the bytes a token stands for (possibly part of a UTF-8 character). Throws
  // Error(kInvalidArgument) for an id outside the vocabulary (also from decode and Detokenizer).
  void append_piece(TokenId id, bool render_special, std::string& out) const;

  // The bytes of a token sequence (not checked for UTF-8: a Detokenizer does that for display).
  std::string decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;

  // The vocabulary's byte trie for constrained decoding, built on first use (thread-safe).
  const VocabTrie& vocab_trie() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: turns tokens, one at a time, into text that is always whole UTF-8
// characters — the bytes of a character split across tokens are held until it completes, bytes that
// can never complete one become U+FFFD.
class Detokenizer {
 public:
  // The tokenizer must outlive the detokenizer.
  explicit Detokenizer(const Tokenizer& tokenizer, const DecodeOptions& options = {});

  // The text `id` completes (often empty while a character is pending or for a control token).
  std::string push(TokenId id);
  // What is still held, as U+FFFD (at the end of a stream, or before a pause in it). The stream
  // may go on: the SPM prefix space is stripped only once.
  std::string flush();
  // Forgets everything, for a new text from its start.
  void reset();

 private:
  const Tokenizer& tokenizer_;
  DecodeOptions options_;
  bool at_start_ = true;  // nothing emitted yet: the SPM prefix space is still to strip
  std::string pending_;
};

}  // namespace ember
