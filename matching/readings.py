"""Japanese and Korean company names read in Latin letters as the companies themselves write them.

anyascii reads every ideograph as Chinese, so 光証券 becomes 'guangzhengquan' and never meets the
account 'Hikari Shoken Co., Ltd.' nor its domain hikarishoken.co.jp; and it spells Hangul letter by
letter (한국 'hangug', 새롬 'saelom') where Korean companies use the Revised Romanization (Hanguk,
Saerom). So:

- a name is read as Japanese when it holds kana, or kanji and the record is Japanese (country JP
  or a .jp domain); pykakasi gives the readings (modified Hepburn), with long vowels written
  plainly (Toyo, Kyushu, Shoken, not touyou, kyuushuu, shouken), and the words that end or begin
  most company names read as words, not merged with their neighbours (日本製薬 is Nihon Seiyaku, not
  nihonsei-kusuri);
- Hangul is romanized syllable by syllable with the Revised Romanization's rules for final
  consonants (ㄱ is k at the end, g before a vowel; ㄹ is l, r between vowels);
- loanwords written in kana or Hangul are the English words they are (ホールディングス, 홀딩스: Holdings);
- a Chinese registered name begins with its place of registration (深圳永信咨询有限公司), which the
  company leaves out in Latin letters (Yongxin Zixun Co., Ltd.): ``place_free_key`` is the reading
  without it, a second key the name is found and compared by.

Only names with kana, kanji or Hangul get here (cached), so Latin names cost nothing more.
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


@functools.lru_cache(maxsize=1 << 16)
def _read(run: str) -> str:
    """A run of Japanese text in Hepburn, long vowels written plainly.

    Cached by run: pykakasi takes about half a millisecond a run, and names are made of far fewer runs
    than there are names (the 7,016 runs of 200,000 generated accounts' Japanese names are 1,529 distinct ones:
    family and place names, brands), the words between them being read from ``COMPANY_WORDS``.
    """
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


_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_VOWELS = ("a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi", "yu",
           "eu", "ui", "i")
# Final consonants: as written before a consonant or at the end, and carried over to a following vowel.
_FINALS = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t", "ng",
           "t", "t", "k", "t", "p", "t")
_FINALS_LINKED = ("", "g", "kk", "ks", "n", "nj", "nh", "d", "r", "lg", "lm", "lb", "ls", "lt", "lp", "lh", "m", "b",
                  "bs", "s", "ss", "ng", "j", "ch", "k", "t", "p", "h")
# Loanwords companies write in English.
KOREAN_WORDS: dict[str, str] = {
    "시스템": "systems", "시스템즈": "systems", "테크": "tech", "소프트": "soft", "컨설팅": "consulting",
    "에너지": "energy", "미디어": "media", "그룹": "group", "홀딩스": "holdings", "솔루션": "solutions",
    "솔루션즈": "solutions", "네트웍스": "networks", "네트웍": "networks", "엔지니어링": "engineering",
    "인터내셔널": "international", "코리아": "korea", "텔레콤": "telecom", "글로벌": "global", "바이오": "bio",
    "파트너스": "partners", "서비스": "services", "디지털": "digital", "케미칼": "chemical", "로지스틱스": "logistics",
    "테크놀로지": "technology", "일렉트로닉스": "electronics", "캐피탈": "capital", "파마": "pharma",
}


def _korean_word(word: str) -> str:
    """A Hangul word in the Revised Romanization (sound changes other than a final carried over left out)."""
    syllables = [ord(ch) - 0xAC00 if "\uac00" <= ch <= "\ud7a3" else -1 for ch in word]
    out: list[str] = []
    for i, code in enumerate(syllables):
        if code < 0:
            out.append(word[i])
            continue
        initial, vowel, final = code // 588, code % 588 // 28, code % 28
        lead = _INITIALS[initial]
        if initial == 5 and i and syllables[i - 1] >= 0 and syllables[i - 1] % 28 == 8:
            lead = "l"  # ㄹ after ㄹ: 물류 mullyu
        out.append(lead + _VOWELS[vowel])
        following = syllables[i + 1] if i + 1 < len(syllables) else -1
        if final:
            out.append(_FINALS_LINKED[final] if following >= 0 and following // 588 == 11 else _FINALS[final])
    return "".join(out)


@functools.lru_cache(maxsize=1 << 16)
def korean_reading(normalized: str) -> str:
    """'새롬 한국 시스템' -> 'saerom hanguk systems'."""
    words = []
    for token in normalized.split():
        english = KOREAN_WORDS.get(token)
        words.append(ABBREVIATIONS.get(english, english) if english else _korean_word(token))
    return " ".join(words)


def reading_key(normalized: str, japan: bool = False) -> str:
    """ascii_key of a normalized name, read as Japanese (see ``is_japanese``) or Korean when it is."""
    if normalized.isascii():
        return ascii_key(normalized)
    if is_japanese(normalized, japan):
        return _NOT_ALNUM.sub("", reading(normalized).lower())
    if _HANGUL.search(normalized):
        return ascii_key(korean_reading(normalized))
    return ascii_key(normalized)


# Provinces and large cities that begin Chinese registered names (行政区划 + 字号 + 行业 + 组织形式).
CHINESE_PLACES: tuple[str, ...] = (
    "中国", "北京", "上海", "天津", "重庆", "深圳", "广州", "杭州", "南京", "武汉", "成都", "西安",
    "苏州", "青岛", "大连", "厦门", "宁波", "长沙", "郑州", "沈阳", "哈尔滨", "济南", "合肥", "福州",
    "昆明", "南昌", "长春", "石家庄", "太原", "南宁", "贵阳", "兰州", "海口", "乌鲁木齐", "呼和浩特", "银川",
    "西宁", "拉萨", "无锡", "东莞", "佛山", "珠海", "温州", "常州", "徐州", "烟台", "泉州", "香港",
    "广东", "浙江", "江苏", "山东", "河南", "河北", "湖北", "湖南", "四川", "福建", "安徽", "江西",
    "辽宁", "吉林", "黑龙江", "云南", "贵州", "陕西", "山西", "甘肃", "海南", "广西", "内蒙古", "新疆",
)
_PLACES = sorted(CHINESE_PLACES, key=len, reverse=True)


@functools.lru_cache(maxsize=1 << 16)
def place_free_key(normalized: str, japan: bool = False) -> str:
    """The reading key of a Chinese name without the place it begins with ('深圳永信咨询' -> 'yongxinzixun'), ''
    when it begins with none (or is Latin, Japanese or Korean)."""
    if normalized.isascii() or is_japanese(normalized, japan) or _HANGUL.search(normalized):
        return ""
    place = next((p for p in _PLACES if normalized.startswith(p)), None)
    if place is None:
        return ""
    rest = normalized[len(place):].lstrip("市省 ")
    return ascii_key(rest) if len(rest) >= 2 else ""
