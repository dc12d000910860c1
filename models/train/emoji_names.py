"""Emoji as words: the `tweet_emoji` text normalisation.

MiniLM's WordPiece vocabulary has no emoji, so without this every emoji reads as `[UNK]`
and 😍 looks the same as 😡. Each emoji becomes its Unicode character name in lower case
(😂 -> "face with tears of joy"), words the pre-trained encoder already understands; a run
of the same emoji is named once; variation selectors, joiners, skin tones and flag letters
are dropped.

The table is `services/inference/src/emoji_names.tsv`, which the inference service compiles
in, so training and serving name every emoji alike. This module writes it from Python's
`unicodedata` (Unicode 14.0.0 in Python 3.11):

    python models/train/emoji_names.py --write services/inference/src/emoji_names.tsv
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from pathlib import Path

TABLE = Path(__file__).resolve().parents[2] / "services" / "inference" / "src" / "emoji_names.tsv"

# Where emoji live: Arrows .. Miscellaneous Symbols and Arrows, and the supplementary planes'
# symbol blocks (Mahjong Tiles .. Symbols and Pictographs Extended-A).
RANGES = [(0x2190, 0x2BFF), (0x1F000, 0x1FAFF)]
# Modifiers that only change how the emoji before or after them looks.
IGNORED = {0xFE0E, 0xFE0F, 0x200D, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0x1F1E6, 0x1F200)}
SPACE_RE = re.compile(r"\s+")


def build_table() -> dict[str, str]:
    table = {}
    for start, end in RANGES:
        for cp in range(start, end + 1):
            ch = chr(cp)
            if cp in IGNORED or unicodedata.category(ch) != "So":
                continue
            name = unicodedata.name(ch, "")
            if name:
                table[ch] = name.lower()
    return table


def load_table(path: Path = TABLE) -> dict[str, str]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        table[chr(int(code, 16))] = name
    return table


def name_emoji(text: str, table: dict[str, str]) -> str:
    """The same cases as the service's tests (`services/inference/src/normalize.rs`):

    >>> t = load_table()
    >>> name_emoji("How many more days until opening day? 😩 ", t)
    'How many more days until opening day? weary face'
    >>> name_emoji("#usa🇺🇸 #USA", t)
    '#usa #USA'
    >>> name_emoji("😂😂😂 lol 😂 ❤️ ok", t)
    'face with tears of joy lol face with tears of joy heavy black heart ok'
    >>> name_emoji("im stuck ☹️ ", t)
    'im stuck white frowning face'
    >>> name_emoji("👍🏽 great", t)
    'thumbs up sign great'
    >>> name_emoji("heart ♥ star ★ ™ ©", t)
    'heart black heart suit star black star ™ ©'
    >>> name_emoji("@user😡http", t)
    '@user pouting face http'
    """
    out = []
    previous = None  # the emoji just named, while only modifiers follow it
    for ch in text:
        if ord(ch) in IGNORED:
            continue
        name = table.get(ch)
        if name is None:
            out.append(ch)
            previous = None
        elif ch != previous:
            out.append(f" {name} ")
            previous = ch
    return SPACE_RE.sub(" ", "".join(out)).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", type=Path, required=True, help="where to write the table")
    args = ap.parse_args()
    table = build_table()
    lines = [
        "# code point (hex) <TAB> name: the emoji the `tweet_emoji` normalisation names.",
        f"# Written by models/train/emoji_names.py from Unicode {unicodedata.unidata_version}.",
    ]
    lines += [f"{ord(ch):X}\t{name}" for ch, name in table.items()]
    args.write.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(table)} emoji -> {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
