"""Builds the training corpus from the King James Bible that Debian's bible-kjv packages ship.

The text (public domain) is read with the `bible` program, verse numbers are dropped, and each
chapter becomes one paragraph under its heading ("Genesis 1"). Every 50th chapter (the 50th,
100th, ... in Bible order) is held out for perplexity; the rest is training text.
"""
import re
import subprocess

HELD_OUT_EVERY = 50  # every 50th chapter -> held-out set (about 2 % of the text)
VERSE = re.compile(r"^\s+(\d+) (.*)$")


def read_kjv():
    """Returns [(heading, [verse, ...]), ...] for all 1189 chapters, in order."""
    raw = subprocess.run(["bible", "-l", "100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    chapters = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        match = VERSE.match(line)
        if match:
            chapters[-1][1].append(match.group(2).strip())
        elif line[0].isspace():
            raise ValueError(f"unexpected line in the bible output: {line!r}")
        elif chapters and chapters[-1][1] and not line[0].isalnum():
            chapters[-1][1][-1] += " " + line.strip()  # a wrapped continuation (not expected)
        else:
            chapters.append((line.strip(), []))
    if len(chapters) != 1189:
        raise ValueError(f"expected 1189 chapters, read {len(chapters)}")
    return chapters


def chapter_text(heading, verses):
    return heading + "\n\n" + " ".join(verses) + "\n\n"


def split_corpus(chapters):
    """(train text, held-out text, training sentences for the tokenizer)."""
    train, held_out, sentences = [], [], []
    for index, (heading, verses) in enumerate(chapters):
        if (index + 1) % HELD_OUT_EVERY == 0:
            held_out.append(chapter_text(heading, verses))
        else:
            train.append(chapter_text(heading, verses))
            sentences.append(heading)
            sentences.extend(verses)
    return "".join(train), "".join(held_out), sentences
