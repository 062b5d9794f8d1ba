"""Labelled claims for the claim checker: real sentences of a corpus, kept or changed so that their passage no longer
supports them, each paired with the passage it cites.

Supported claims:
- quote: a sentence of the passage as it stands;
- clause: the sentence with a parenthesis or a trailing clause cut off ("…, which …"), or its first clause;
- question: a question written on the passage (SQuAD) turned into a statement with its answer ("Who won Super Bowl
  50?" + "Denver Broncos" -> "Denver Broncos won Super Bowl 50."), worded as the question was, not as the text is.

Unsupported claims, each one small change away from a supported one:
- negated: a negation added after the first auxiliary ("was" -> "was not") or taken away;
- number: a number or year changed (one that the passage does not hold);
- name: a name replaced by another name of the same article that the passage does not hold;
- swapped: two names of the sentence swapped ("A defeated B" -> "B defeated A");
- antonym (only with `opposites=True`, a recipe tried and not shipped: docs/reader.md): a word turned into its
  opposite ("increased" -> "decreased", "accepted" -> "refused"), from the word list in eval/antonyms.py;
- answer: a question's statement with another question's answer of the same kind (a number for a number);
- other passage: a sentence cited to the passage of the same article that shares the most words with it but does
  not hold it.

Everything is drawn with a generator seeded by the passage's id, so a set is the same on every run. Folds are by
article (eval/reader_training_data.py): a checker is trained on fold 1's articles and measured on fold 0's.
"""

from __future__ import annotations

import itertools
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from citeqa.eval.antonyms import OPPOSITES
from citeqa.eval.reader_training_data import article_folds
from citeqa.index.text.spans import sentence_spans

SEED = 20261207
AUXILIARY = re.compile(r"\b(is|are|was|were|has|have|had|can|could|will|would|should|may|might|must|does|do|did)\b")
NEGATION = re.compile(r"\s*\b(?:not|never|no longer)\b|n't\b")
NUMBER = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?![\w])")
NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][a-z]+)*")
WORD = re.compile(r"\w+")
TRAILING_CLAUSE = re.compile(r",\s+(?:which|who|whose|where|while|although|though|including|making|as well as)\b.*$")
PARENTHESIS = re.compile(r"\s*\([^()]*\)")
COORDINATION = re.compile(r"^[\s,]*(?:and|or|,)?[\s,]*$")
STATEMENT_QUESTION = re.compile(r"^(?:who|what)\s+(?=\w+(?:ed|es|s)\b|is\b|was\b|are\b|were\b|has\b|had\b)", re.IGNORECASE)
STOPWORDS = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "but", "is", "are"}
    | {"was", "were", "be", "been", "has", "have", "had", "it", "its", "this", "that", "as", "which", "who", "what"}
    | {"when", "where", "why", "how", "not", "no"}
)


@dataclass(frozen=True)
class LabelledClaim:
    claim: str
    title: str  # the passage's document title
    evidence: str  # the passage the claim cites
    supported: bool
    kind: str
    fold: int
    anchor: str = ""  # what of the passage it was made from (a sentence, or a question's right answer); "" for none

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str
    questions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (question, its answers) written on this passage
    group: str = ""  # what stands for its article when that is not its title (abstracts grouped by position)

    @property
    def article(self) -> str:
        return self.group or self.title


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS}


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def sentences_of(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentence_spans(text)]


def negated(sentence: str) -> str | None:
    if NEGATION.search(sentence):
        changed = NEGATION.sub("", sentence, count=1)
        return changed if changed != sentence else None
    match = AUXILIARY.search(sentence)
    if not match:
        return None
    return f"{sentence[: match.end()]} not{sentence[match.end() :]}"


def changed_number(sentence: str, passage: str, rng: np.random.Generator) -> str | None:
    found = list(NUMBER.finditer(sentence))
    if not found:
        return None
    match = found[int(rng.integers(len(found)))]
    text = match.group(0)
    value = float(text.replace(",", ""))
    for _ in range(10):
        if "." in text:
            new = f"{value * float(rng.choice([0.5, 1.5, 2.0, 3.0])):.{len(text.split('.')[1])}f}"
        elif 1000 <= value <= 2100 and "," not in text:
            new = str(int(value) + int(rng.choice([-1, 1])) * int(rng.integers(1, 15)))
        elif value < 20:
            new = str(int(value) + int(rng.integers(1, 6)))
        else:
            factor = float(rng.choice([0.3, 0.5, 2.0, 3.0, 1.25]))
            new = f"{round(value * factor):,}" if "," in text else str(round(value * factor))
        if new != text and new not in passage:
            return sentence[: match.start()] + new + sentence[match.end() :]
    return None


def names_in(sentence: str) -> list[re.Match[str]]:
    """Capitalised phrases that are not just the sentence's first word."""
    return [m for m in NAME.finditer(sentence) if m.start() > 0 and m.group(0).lower() not in STOPWORDS]


def replaced_name(sentence: str, passage: str, other_names: list[str], rng: np.random.Generator) -> str | None:
    found = names_in(sentence)
    candidates = [n for n in other_names if n not in passage]
    if not found or not candidates:
        return None
    match = found[int(rng.integers(len(found)))]
    same_length = [n for n in candidates if len(n.split()) == len(match.group(0).split())] or candidates
    new = same_length[int(rng.integers(len(same_length)))]
    return sentence[: match.start()] + new + sentence[match.end() :]


def swapped_names(sentence: str) -> str | None:
    found = names_in(sentence)
    for first, second in itertools.pairwise(found):
        between = sentence[first.end() : second.start()]
        a, b = first.group(0), second.group(0)
        # "A and B", "A, B": swapping them keeps the meaning; names sharing a word are parts of one name
        if COORDINATION.match(between) or a == b or set(a.split()) & set(b.split()):
            continue
        return sentence[: first.start()] + b + between + a + sentence[second.end() :]
    return None


def antonym(sentence: str, rng: np.random.Generator) -> str | None:
    """One word of the sentence that has an opposite in the list, replaced by it (its capital kept, and "a"/"an"
    before it agreeing with the new word)."""
    found = [m for m in WORD.finditer(sentence) if m.group(0).lower() in OPPOSITES]
    if not found:
        return None
    match = found[int(rng.integers(len(found)))]
    word = match.group(0)
    new = OPPOSITES[word.lower()]
    new = new[:1].upper() + new[1:] if word[:1].isupper() else new
    before = sentence[: match.start()]
    article = re.search(r"\b(an?) $", before, re.IGNORECASE)
    if article:
        wanted = "an" if new[:1].lower() in "aeiou" else "a"
        before = before[: article.start(1)] + (wanted.capitalize() if article.group(1)[0].isupper() else wanted) + " "
    return before + new + sentence[match.end() :]


def clause(sentence: str) -> str | None:
    shorter = PARENTHESIS.sub("", sentence)
    shorter = TRAILING_CLAUSE.sub("", shorter)
    if shorter != sentence and len(shorter.split()) >= 5:
        return shorter.rstrip(" ,;") + ("" if shorter.rstrip().endswith(".") else ".")
    first = sentence.split(", ")[0]
    if first != sentence and len(first.split()) >= 7:
        return first.rstrip(" ,;") + "."
    return None


def statement(question: str, answer: str) -> str:
    """A question with its answer as a statement: "Who won X?" -> "A won X."; other forms keep the question and
    append the answer ("In what year did X end? 1945.")."""
    text = question.strip().rstrip("?").strip()
    match = STATEMENT_QUESTION.match(text)
    if match:
        return f"{answer} {text[match.end() :]}."
    return f"{text}? {answer.rstrip('.')}."


def answer_kind(answer: str) -> str:
    if any(c.isdigit() for c in answer):
        return "number"
    return "name" if answer[:1].isupper() else "phrase"


def claims_of_passage(
    passage: Passage,
    neighbours: list[Passage],
    article_names: list[str],
    article_answers: list[str],
    fold: int,
    per_passage: int,
    questions: int,
    opposites: bool = False,
    changes: int = 1,
) -> Iterator[LabelledClaim]:
    """Up to `per_passage` sentences of the passage, each with one supported claim and `changes` unsupported ones
    (of kinds drawn at random among those that apply), and up to `questions` of its questions as a right and a wrong
    statement. With more than one change a sentence also gives both its supported forms, the quote and its clause,
    so that the labels stay about balanced; with one, the draws are those of the held-out sets."""
    rng = np.random.default_rng([SEED, zlib.crc32(passage.id.encode())])
    sentences = [s for s in sentences_of(passage.text) if len(s.split()) >= 6]
    chosen = [sentences[i] for i in sorted(rng.permutation(len(sentences))[:per_passage])]

    def labelled(claim: str, supported: bool, kind: str, anchor: str, evidence: Passage = passage) -> LabelledClaim:
        return LabelledClaim(claim, evidence.title, evidence.text, supported, kind, fold, anchor)

    for sentence in chosen:
        shorter = clause(sentence)
        if changes > 1:
            yield labelled(sentence, True, "quote", sentence)
            if shorter:
                yield labelled(shorter, True, "clause", sentence)
        elif shorter and rng.random() < 0.5:
            yield labelled(shorter, True, "clause", sentence)
        else:
            yield labelled(sentence, True, "quote", sentence)
        made = 0
        makers = {
            "negated": lambda s=sentence: negated(s),
            "number": lambda s=sentence: changed_number(s, passage.text, rng),
            "name": lambda s=sentence: replaced_name(s, passage.text, article_names, rng),
            "swapped": lambda s=sentence: swapped_names(s),
            **({"antonym": lambda s=sentence: antonym(s, rng)} if opposites else {}),
            "other passage": lambda s=sentence: s,
        }
        for kind in [list(makers)[i] for i in rng.permutation(len(makers))]:
            if kind == "other passage":
                other = closest_other(sentence, neighbours)
                if other is not None:
                    yield labelled(sentence, False, kind, "", other)
                    made += 1
            else:
                changed = makers[kind]()
                if changed and changed != sentence:
                    yield labelled(changed, False, kind, sentence)
                    made += 1
            if made == changes:
                break
    for index in rng.permutation(len(passage.questions))[:questions]:
        question, answers = passage.questions[int(index)]
        answer = min(answers, key=len)
        yield labelled(statement(question, answer), True, "question", answer)
        kind = answer_kind(answer)
        wrong = [
            a
            for a in article_answers
            if answer_kind(a) == kind and a not in passage.text and not any(a in b or b in a for b in answers)
        ]
        if wrong:
            yield labelled(statement(question, wrong[int(rng.integers(len(wrong)))]), False, "answer", answer)


def closest_other(sentence: str, neighbours: list[Passage]) -> Passage | None:
    """The passage of the same article sharing the most words with the sentence, unless one of its sentences says
    nearly the same thing (then it may well support it)."""
    words = content_words(sentence)
    best, best_overlap = None, 0.0
    for other in neighbours:
        shared = overlap(words, content_words(other.text))
        if shared > best_overlap:
            best, best_overlap = other, shared
    if best is None or any(overlap(words, content_words(s)) > 0.5 for s in sentences_of(best.text)):
        return None
    return best


def claim_set(
    passages: Iterable[Passage], per_passage: int = 2, questions: int = 1, opposites: bool = False, changes: int = 1
) -> list[LabelledClaim]:
    """Claims for every passage, grouped by article (names, answers and wrong passages come from the same one);
    `opposites` adds the antonym kind to the changes drawn, `changes` is the unsupported claims made of a sentence."""
    by_title: dict[str, list[Passage]] = {}
    for passage in passages:
        by_title.setdefault(passage.article, []).append(passage)
    folds = article_folds(list(by_title))
    claims: list[LabelledClaim] = []
    for title in sorted(by_title):
        members = by_title[title]
        names = sorted({m.group(0) for p in members for m in names_in(p.text)})
        answers = sorted({a for p in members for _, found in p.questions for a in found if len(a) <= 40})
        for passage in members:
            neighbours = [p for p in members if p.id != passage.id]
            claims.extend(
                claims_of_passage(passage, neighbours, names, answers, folds[title], per_passage, questions, opposites, changes)
            )
    return claims


def squad_passages(dataset: Path) -> list[Passage]:
    """A SQuAD-style BEIR dataset's paragraphs with the questions written on each (qrels point at the paragraph)."""
    documents = [json.loads(line) for line in (dataset / "corpus.jsonl").open(encoding="utf-8")]
    questions = {q["_id"]: q for q in map(json.loads, (dataset / "queries.jsonl").open(encoding="utf-8"))}
    asked: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for line in (dataset / "qrels" / "test.tsv").open(encoding="utf-8"):
        query_id, doc_id, *_ = line.split("\t")
        if query_id in questions and questions[query_id].get("answers"):
            asked.setdefault(doc_id, []).append((questions[query_id]["text"], tuple(questions[query_id]["answers"])))
    return [Passage(d["_id"], d["title"], d["text"], tuple(asked.get(d["_id"], ()))) for d in documents]


def abstract_passages(dataset: Path, first: int, limit: int, group: int = 25) -> list[Passage]:
    """Abstracts first .. first + limit - 1 of a BEIR corpus (SciFact), in groups of `group` standing in for
    articles (names and wrong passages are drawn within a group)."""
    passages = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for n, line in enumerate(corpus):
            if n >= first + limit:
                break
            if n >= first:
                document = json.loads(line)
                group_name = f"group {n // group:04d}"
                passages.append(Passage(document["_id"], document.get("title", ""), document["text"], group=group_name))
    return passages


def write(claims: list[LabelledClaim], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(c.to_json() + "\n" for c in claims), encoding="utf-8")


def read(path: Path) -> list[LabelledClaim]:
    return [LabelledClaim(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
