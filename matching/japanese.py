"""Japanese company names read in Latin letters (modified Hepburn, long vowels unmarked), as people type them.

anyascii reads every ideograph as Chinese, so 光証券 becomes 'guangzhengquan' and never meets the
account 'Hikari Shoken Co., Ltd.' nor its domain hikarishoken.co.jp. A name is read as Japanese
when it holds kana, or kanji and the record is Japanese (country JP or a .jp domain); pykakasi gives
the readings. Two things kakasi does not do as a company's own romanization does:

- long vowels are written plainly (Toyo, Kyushu, Shoken, not touyou, kyuushuu, shouken);
- the words that end or begin most company names are read as words, not merged with their
  neighbours (日本製薬 is Nihon Seiyaku, not nihonsei-kusuri), and their katakana loanwords are
  written as the English words they are (ホールディングス: Holdings, システムズ: Systems).

Only names with kana or kanji get here (cached), so Latin names cost nothing more.
"""

from __future__ import annotations

import functools
import re
import threading

from matching.names import ABBREVIATIONS, ascii_key

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# a long vowel (uu, oo, and ou not followed by a vowel): 東洋 touyou is Toyo, 中央 chuuou Chuo, 井上 inoue Inoue
_LONG_VOWELS = re.compile(r"(?<=u)u|(?<=o)o|(?<=o)u(?![aeiou])")
_NOT_ALNUM = re.compile(r"[\W_]+")

# Words common in Japanese company names, read as a company writes them in Latin letters.
COMPANY_WORDS: dict[str, str] = {
    "日本": "nihon", "製薬": "seiyaku", "薬品": "yakuhin", "証券": "shoken", "保険": "hoken", "損保": "sonpo",
    "商事": "shoji", "商会": "shokai", "商店": "shoten", "物産": "bussan", "通信": "tsushin", "技研": "giken",
    "製作所": "seisakusho", "工業": "kogyo", "興業": "kogyo", "重工": "juko", "産業": "sangyo", "電機": "denki",
    "電気": "denki", "電子": "denshi", "電力": "denryoku", "運輸": "unyu", "物流": "butsuryu", "倉庫": "soko",
    "海運": "kaiun", "航空": "koku", "鉄道": "tetsudo", "食品": "shokuhin", "建設": "kensetsu", "銀行": "ginko",
    "信託": "shintaku", "不動産": "fudosan", "化学": "kagaku", "精機": "seiki", "自動車": "jidosha",
    "開発": "kaihatsu", "情報": "joho", "技術": "gijutsu", "研究所": "kenkyujo", "設計": "sekkei",
    "印刷": "insatsu", "製紙": "seishi", "製鉄": "seitetsu", "石油": "sekiyu", "百貨店": "hyakkaten",
    "総研": "soken", "企画": "kikaku", "工務店": "komuten",
    # katakana loanwords: written in English by the companies themselves
    "ホールディングス": "holdings", "システムズ": "systems", "システム": "systems", "ソフトウェア": "software",
    "ソフト": "soft", "エネルギー": "energy", "メディア": "media", "テクノロジー": "technology",
    "テクノロジーズ": "technologies", "サービス": "services", "ネットワーク": "networks", "ネットワークス": "networks",
    "エンジニアリング": "engineering", "コンサルティング": "consulting", "グループ": "group",
    "ソリューションズ": "solutions", "ソリューション": "solutions", "デザイン": "design", "ファーマ": "pharma",
    "ロジスティクス": "logistics", "インターナショナル": "international", "トレーディング": "trading",
    "マネジメント": "management", "パートナーズ": "partners", "ラボ": "labs", "エレクトロニクス": "electronics",
    "フーズ": "foods", "キャピタル": "capital", "ファイナンス": "finance", "マーケティング": "marketing",
    "モーターズ": "motors", "ケミカル": "chemical", "デジタル": "digital", "ジャパン": "japan",
}
_WORDS = sorted(COMPANY_WORDS, key=len, reverse=True)
_local = threading.local()


def _kakasi():
    converter = getattr(_local, "kakasi", None)
    if converter is None:
        import pykakasi  # imported on first use: a CRM without Japanese names never loads its dictionaries

        converter = _local.kakasi = pykakasi.kakasi()
    return converter


def is_japanese(text: str, japan: bool = False) -> bool:
    """Kana say Japanese; kanji alone (Chinese too) only for a Japanese record (``japan``)."""
    if text.isascii():
        return False
    return bool(_KANA.search(text)) or (japan and bool(_KANJI.search(text)))


def _read(run: str) -> str:
    """A run of Japanese text in Hepburn, long vowels written plainly."""
    out = []
    for part in _kakasi().convert(run):
        reading = part["hepburn"] or part["orig"]
        out.append(_LONG_VOWELS.sub("", reading))
    return "".join(out)


@functools.lru_cache(maxsize=1 << 16)
def reading(normalized: str) -> str:
    """'光証券' -> 'hikari shoken', '九州システムズ' -> 'kyushu systems': the Latin reading of a Japanese name."""
    words: list[str] = []
    for token in normalized.split():
        run = ""
        i = 0
        while i < len(token):
            word = next((w for w in _WORDS if token.startswith(w, i)), None)
            if word is None:
                run += token[i]
                i += 1
                continue
            if run:
                words.append(_read(run))
                run = ""
            english = COMPANY_WORDS[word]
            words.append(ABBREVIATIONS.get(english, english))
            i += len(word)
        if run:
            words.append(_read(run))
    return " ".join(w for w in words if w)


def reading_key(normalized: str, japan: bool = False) -> str:
    """ascii_key of a normalized name, read as Japanese when it is (see ``is_japanese``)."""
    if not is_japanese(normalized, japan):
        return ascii_key(normalized)
    return _NOT_ALNUM.sub("", reading(normalized).lower())
