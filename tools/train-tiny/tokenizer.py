"""Trains the shared SentencePiece tokenizer: BPE with byte fallback, set up like Llama 2's.

Identity normalization (the text is tokenized as written), a "▁" prefix, digits split, unknown
characters as <0xNN> byte tokens; ids 0, 1, 2 are <unk>, <s>, </s>.
"""
import sentencepiece as spm


def train_tokenizer(sentences, prefix, vocab_size):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=prefix, model_type="bpe", vocab_size=vocab_size,
        character_coverage=1.0, byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=2, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")
