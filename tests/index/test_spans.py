from citeqa.index.text.spans import Span, sentence_spans, trim


def test_sentences_keep_their_punctuation_and_closing_quotes() -> None:
    text = "He said ‘No, we cannot.’ Then he left! Did he?\nNew line"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["He said ‘No, we cannot.’", "Then he left!", "Did he?", "New line"]


def test_sentence_spans_respect_a_window() -> None:
    text = "One. Two. Three."
    assert [text[s:e] for s, e in sentence_spans(text, 5, 16)] == ["Two.", "Three."]


def test_trim_never_crosses_itself() -> None:
    assert trim("   ", Span(0, 3)) == Span(3, 3)
    assert trim("  a  ", Span(0, 5)) == Span(2, 3)
