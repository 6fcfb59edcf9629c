// A downstream C++ program: greedy text from MODEL through the installed C++ API, or the version.
#include <cstdio>
#include <iostream>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    // Every free function the installed headers declare links against libember.so.
    std::cout << "ember C++ API linked: " << ember::dtype_name(ember::DType::kQ8_0) << " "
              << ember::dtype_traits(ember::DType::kF16).block_bytes << " "
              << ember::dtype_from_name("q4_k").has_value() << ember::dtype_id_is_known(2) << " "
              << ember::dtype_name(ember::dtype_from_id(8)) << " "
              << ember::dtype_bytes_for(ember::DType::kF32, 4).value_or(0) << " "
              << ember::dtype_alignment(ember::DType::kF64) << " "
              << (ember::dtype_traits_end() - ember::dtype_traits_begin()) << " "
              << ember::error_code_name(ember::ErrorCode::kIo) << " "
              << ember::hook_point_name(ember::HookPoint::kLogits) << " "
              << ember::finish_reason_name(ember::FinishReason::kMaxTokens) << "\n";
    return 0;
  }
  try {
    ember::Session session(ember::Llm::load(argv[1], {.threads = 1, .context = 128}));
    ember::GenerateOptions options;
    options.sampling.temperature = 0.0f;
    options.stop.max_tokens = 20;
    for (const ember::GeneratedToken& token : session.generate("Once upon a time", options)) std::cout << token.text;
    std::cout << "\n";
  } catch (const ember::Error& e) {  // the library's exception type, caught across the .so boundary
    std::fprintf(stderr, "error (%s): %s\n", std::string(ember::error_code_name(e.code())).c_str(), e.what());
    return 1;
  }
  return 0;
}
