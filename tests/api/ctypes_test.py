#!/usr/bin/env python3
"""Drives libember.so from Python through ctypes, as a binding in another language would: load,
tokenize, detokenize, generate with a callback, errors. Usage: ctypes_test.py LIBEMBER.so DATA_DIR
(exits 77, "skipped", when the test data is absent)."""
import ctypes
import os
import sys

GREEDY = ", there was a little girl named Lily. She loved to play outside in the park."


class LoadParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_threads", ctypes.c_int32), ("n_ctx", ctypes.c_int32),
                ("kv_f32", ctypes.c_int32), ("mlock", ctypes.c_int32), ("chat_template", ctypes.c_char_p),
                ("deterministic", ctypes.c_int32)]


class GenerateParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("top_p", ctypes.c_float), ("min_p", ctypes.c_float), ("typical_p", ctypes.c_float),
                ("repeat_penalty", ctypes.c_float), ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float), ("penalty_last_n", ctypes.c_int32),
                ("seed", ctypes.c_uint64), ("max_tokens", ctypes.c_int32),
                ("stop", ctypes.POINTER(ctypes.c_char_p)), ("n_stop", ctypes.c_size_t),
                ("max_time_ms", ctypes.c_double), ("n_logprobs", ctypes.c_int32),
                ("add_special", ctypes.c_bool), ("parse_special", ctypes.c_bool), ("draft_max", ctypes.c_int32),
                ("draft_min", ctypes.c_int32), ("spec_ngram", ctypes.c_int32), ("draft_always", ctypes.c_int32),
                ("draft_p_min", ctypes.c_float)]


class TokenLogprob(ctypes.Structure):
    _fields_ = [("token", ctypes.c_int32), ("logprob", ctypes.c_float)]


class Token(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("token", ctypes.c_int32), ("text", ctypes.c_void_p),
                ("text_length", ctypes.c_size_t), ("logprob", ctypes.c_float),
                ("top", ctypes.POINTER(TokenLogprob)), ("n_top", ctypes.c_size_t),
                ("byte_offset", ctypes.c_size_t)]


class GenerateStats(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("prompt_tokens", ctypes.c_int32),
                ("cached_tokens", ctypes.c_int32), ("generated_tokens", ctypes.c_int32),
                ("prefill_ms", ctypes.c_double), ("decode_ms", ctypes.c_double), ("sample_ms", ctypes.c_double),
                ("first_token_ms", ctypes.c_double), ("total_ms", ctypes.c_double), ("finish", ctypes.c_int),
                ("reserved0", ctypes.c_int32), ("draft_tokens", ctypes.c_int32), ("accepted_tokens", ctypes.c_int32)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.POINTER(Token), ctypes.c_void_p)
OK, INVALID_ARGUMENT, IO, BUFFER_TOO_SMALL = 0, 1, 2, 8
FINISH_MAX_TOKENS, FINISH_STOP_STRING = 2, 3


def bind(path):
    lib = ctypes.CDLL(path)
    p = ctypes.POINTER
    sigs = {
        "ember_version": (ctypes.c_char_p, []),
        "ember_last_error": (ctypes.c_char_p, []),
        "ember_load_params_init_sized": (None, [p(LoadParams), ctypes.c_size_t]),
        "ember_model_load": (ctypes.c_int, [ctypes.c_char_p, p(LoadParams), p(ctypes.c_void_p)]),
        "ember_model_free": (None, [ctypes.c_void_p]),
        "ember_tokenize": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool,
                                          ctypes.c_bool, p(ctypes.c_int32), ctypes.c_size_t, p(ctypes.c_size_t)]),
        "ember_detokenize": (ctypes.c_int, [ctypes.c_void_p, p(ctypes.c_int32), ctypes.c_size_t, ctypes.c_bool,
                                            ctypes.c_char_p, ctypes.c_size_t, p(ctypes.c_size_t)]),
        "ember_session_new": (ctypes.c_int, [ctypes.c_void_p, p(ctypes.c_void_p)]),
        "ember_session_free": (None, [ctypes.c_void_p]),
        "ember_generate_params_init_sized": (None, [p(GenerateParams), ctypes.c_size_t]),
        "ember_generate_stats_init_sized": (None, [p(GenerateStats), ctypes.c_size_t]),
        "ember_generate": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, p(GenerateParams), CALLBACK,
                                          ctypes.c_void_p, p(GenerateStats)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def check(condition, what):
    if not condition:
        print("FAIL:", what)
        sys.exit(1)


def main():
    lib_path, data_dir = sys.argv[1], sys.argv[2]
    model_path = os.path.join(data_dir, "models/stories260K/stories260K.gguf")
    if not os.path.exists(model_path):
        if os.environ.get("EMBER_REQUIRE_SHARED_DATA") == "1":
            print("FAIL: ../shared/data not found (EMBER_REQUIRE_SHARED_DATA=1)")
            sys.exit(1)
        print("SKIP: ../shared/data not found beside the checkout; test data absent")
        sys.exit(77)
    lib = bind(lib_path)
    check(lib.ember_version().decode().count(".") == 2, "ember_version")

    model = ctypes.c_void_p()
    check(lib.ember_model_load(b"/no/such.gguf", None, ctypes.byref(model)) == IO, "a missing file is EMBER_ERROR_IO")
    check(b"/no/such.gguf" in lib.ember_last_error(), "the message names the file")

    params = LoadParams()
    lib.ember_load_params_init_sized(ctypes.byref(params), ctypes.sizeof(params))
    check(params.struct_size == ctypes.sizeof(LoadParams), "the Python struct matches the C one")
    params.n_threads, params.n_ctx = 2, 128
    check(lib.ember_model_load(model_path.encode(), ctypes.byref(params), ctypes.byref(model)) == OK,
          "load: " + lib.ember_last_error().decode())

    text = "Once upon a time".encode()
    n = ctypes.c_size_t()
    check(lib.ember_tokenize(model, text, len(text), True, False, None, 0, ctypes.byref(n)) == BUFFER_TOO_SMALL,
          "tokenize reports the size it needs")
    ids = (ctypes.c_int32 * n.value)()
    check(lib.ember_tokenize(model, text, len(text), True, False, ids, n.value, ctypes.byref(n)) == OK, "tokenize")
    check(ids[0] == 1, "BOS first")
    buf = ctypes.create_string_buffer(256)
    length = ctypes.c_size_t()
    check(lib.ember_detokenize(model, ids, n.value, False, buf, 256, ctypes.byref(length)) == OK, "detokenize")
    check(buf.value == text, "round trip: %r" % buf.value)

    session = ctypes.c_void_p()
    check(lib.ember_session_new(model, ctypes.byref(session)) == OK, "session")
    gen = GenerateParams()
    lib.ember_generate_params_init_sized(ctypes.byref(gen), ctypes.sizeof(gen))
    check(gen.struct_size == ctypes.sizeof(GenerateParams), "the Python struct matches the C one")
    gen.temperature, gen.max_tokens, gen.n_logprobs = 0.0, 40, 1
    pieces, logprobs, offsets = [], [], []

    def on_token(token, _user):
        t = token.contents
        check(t.struct_size == ctypes.sizeof(Token), "the Python token struct matches the C one")
        if t.token >= 0:
            logprobs.append(t.logprob)
            offsets.append((t.byte_offset, len("".join(pieces).encode())))
        pieces.append(ctypes.string_at(t.text, t.text_length).decode())
        return True

    callback = CALLBACK(on_token)  # kept alive until ember_generate returns
    stats = GenerateStats()
    lib.ember_generate_stats_init_sized(ctypes.byref(stats), ctypes.sizeof(stats))
    check(lib.ember_generate(session, text, ctypes.byref(gen), callback, None, ctypes.byref(stats)) == OK,
          "generate: " + lib.ember_last_error().decode())
    out = "".join(pieces)
    check(out.startswith(GREEDY), "greedy text: %r" % out)
    check(stats.generated_tokens == 40 and stats.finish == FINISH_MAX_TOKENS, "stats")
    check(len(logprobs) == 40 and all(lp <= 0 for lp in logprobs), "logprobs")
    check(all(at == shown for at, shown in offsets), "byte offsets: %r" % offsets)  # nothing held back

    stop = (ctypes.c_char_p * 1)(b" Lily.")
    gen.stop, gen.n_stop = stop, 1
    pieces.clear()
    check(lib.ember_generate(session, text, ctypes.byref(gen), callback, None, ctypes.byref(stats)) == OK, "stop")
    check("".join(pieces) == ", there was a little girl named", "stop string: %r" % "".join(pieces))
    check(stats.finish == FINISH_STOP_STRING and stats.cached_tokens > 0, "stop stats")

    gen.top_p = 3.0
    check(lib.ember_generate(session, text, ctypes.byref(gen), callback, None, None) == INVALID_ARGUMENT, "bad top_p")
    check(b"top_p" in lib.ember_last_error(), "the message names top_p")

    lib.ember_session_free(session)
    lib.ember_model_free(model)
    print("ctypes: ok")


if __name__ == "__main__":
    main()
