import pytest

from citeqa.service.conversation import Turn, condense, entities


def user(text: str) -> Turn:
    return Turn("user", text)


def assistant(text: str) -> Turn:
    return Turn("assistant", text)


def test_entities_skip_question_words() -> None:
    assert entities("What did Sergei Shoygu and the SVR say?") == ["Sergei Shoygu", "SVR"]
    assert entities("what position does he hold?") == []


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("What position does he hold?", "What position does Shoygu hold?"),
        ("And what did the SVR claim?", "what did the SVR claim?"),
        ("What about Peskov?", "what did Peskov allege?"),
        ("What did his statement say about Ukraine?", "What did Shoygu’s statement say about Ukraine?"),
        ("why?", "what did Shoygu allege? why?"),
    ],
)
def test_follow_ups_are_resolved_against_earlier_questions(follow_up: str, standalone: str) -> None:
    turns = [Turn("system", "Be brief."), user("what did Shoygu allege?"), assistant("He alleged ... [1]"), user(follow_up)]
    assert condense(turns) == standalone


def test_a_first_question_is_searched_as_asked() -> None:
    assert condense([user("  what did Shoygu allege?  ")]) == "what did Shoygu allege?"


def test_an_adjective_of_nationality_is_not_taken_for_a_person() -> None:
    turns = [user("Who is the British prime minister?"), assistant("Keir Starmer [1]"), user("Why did his plan fail?")]
    assert condense(turns) == "Why did his plan fail? Who is the British prime minister?"


def test_no_user_turn_is_an_error() -> None:
    with pytest.raises(ValueError):
        condense([Turn("system", "hello")])
