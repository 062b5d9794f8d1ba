"""Words and their opposites, for the claim checker's labelled claims (eval/claim_set.py turns one word of a true
sentence into its opposite to make a claim its passage no longer supports).

Each row pairs the forms of two opposite words position by position ("increase increases increased increasing"
against "decrease decreases decreased decreasing"); the mapping goes both ways. The list is general English and the
words of science abstracts; it leaves out on purpose every pair that eval/claims.jsonl (claims about the seed document
written by hand) turns around, so that set keeps measuring opposites the checker never saw in training.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str], ...] = (
    ("increase increases increased increasing", "decrease decreases decreased decreasing"),
    ("rise rises rose rising risen", "fall falls fell falling fallen"),
    ("high higher highest", "low lower lowest"),
    ("large larger largest", "small smaller smallest"),
    ("greater", "lesser"),
    ("more", "less"),
    ("most", "least"),
    ("early earlier earliest", "late later latest"),
    ("before", "after"),
    ("first", "last"),
    ("positive positively", "negative negatively"),
    ("enhance enhances enhanced enhancing", "reduce reduces reduced reducing"),
    ("activate activates activated activating activation", "inhibit inhibits inhibited inhibiting inhibition"),
    ("upregulated upregulation", "downregulated downregulation"),
    ("promote promotes promoted promoting", "suppress suppresses suppressed suppressing"),
    ("win wins won winning", "lose loses lost losing"),
    ("victory victories", "defeat defeats"),
    ("accept accepts accepted accepting", "refuse refuses refused refusing"),
    ("allow allows allowed allowing", "prohibit prohibits prohibited prohibiting"),
    ("supports supported supporting", "opposes opposed opposing"),
    ("agree agrees agreed agreeing", "disagree disagrees disagreed disagreeing"),
    ("include includes included including", "exclude excludes excluded excluding"),
    ("presence", "absence"),
    ("strong stronger strongest strongly", "weak weaker weakest weakly"),
    ("fast faster fastest rapid rapidly", "slow slower slowest gradual gradually"),
    ("beneficial benefit benefits", "harmful harm harms"),
    ("safe safer", "dangerous riskier"),
    ("legal legally", "illegal illegally"),
    ("possible", "impossible"),
    ("common commonly frequent frequently", "rare rarely infrequent infrequently"),
    ("open opens opened opening", "close closes closed closing"),
    ("begins began", "ends ended"),
    ("north northern", "south southern"),
    ("maximum", "minimum"),
    ("internal", "external"),
    ("male males men man", "female females women woman"),
    ("inside", "outside"),
    ("above", "below"),
    ("older oldest", "younger youngest"),
    ("new newer newest", "old older oldest"),
    ("long longer longest", "short shorter shortest"),
    ("rich richer richest wealthy", "poor poorer poorest impoverished"),
    ("private privately", "public publicly"),
    ("domestic", "foreign"),
    ("sensitive sensitivity", "resistant resistance"),
    ("benign", "malignant"),
    ("acute", "chronic"),
    ("dominant", "recessive"),
    ("elevated", "lowered"),
    ("efficient effective", "inefficient ineffective"),
    ("stable", "unstable"),
    ("active", "inactive"),
    ("import imports imported importing", "export exports exported exporting"),
    ("buy buys bought buying", "sell sells sold selling"),
    ("married", "divorced"),
    ("ally allies friendly", "enemy enemies hostile"),
    ("attacks attacked attacking", "defends defended defending"),
    ("majority", "minority"),
    ("top", "bottom"),
    ("true", "false"),
    ("correct correctly", "incorrect incorrectly"),
    ("join joins joined joining", "leave leaves left leaving"),
    ("add adds added adding", "remove removes removed removing"),
    ("urban", "rural"),
    ("modern", "ancient"),
    ("wet", "dry"),
    ("hot warm warmer", "cold cool cooler"),
    ("full", "empty"),
    ("overexpression overexpressed", "knockdown silenced"),
    ("agonist agonists", "antagonist antagonists"),
)


def opposites(rows: tuple[tuple[str, str], ...] = ROWS) -> dict[str, str]:
    """Every form to its opposite, both ways; where a form appears in two rows the first row wins."""
    mapping: dict[str, str] = {}
    for left, right in rows:
        for a, b in zip(left.split(), right.split(), strict=True):
            mapping.setdefault(a, b)
            mapping.setdefault(b, a)
    return mapping


OPPOSITES = opposites()
