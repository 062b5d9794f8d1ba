"""The chat page in headless Chromium (Debian's chromium + chromedriver, driven by selenium)."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import SEED_ID
from tests.helpers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("page-index")) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # selenium must never try to download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def ask(browser: webdriver.Chrome, question: str, answers_before: int) -> None:
    box = browser.find_element(By.ID, "question")
    box.send_keys(question, Keys.ENTER)
    WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "li.assistant.done")) > answers_before)


def test_ask_stream_and_open_the_cited_span(browser: webdriver.Chrome, server: str, tmp_path: Path) -> None:
    browser.get(server + "/")
    ask(browser, "what did Shoygu allege?", 0)
    answer = browser.find_element(By.CSS_SELECTOR, "li.assistant.done .answer")
    assert "Shoygu alleged" in answer.text

    browser.find_element(By.CSS_SELECTOR, "li.assistant.done .answer button.cite[data-marker='1']").click()
    mark = WebDriverWait(browser, 20).until(ready.visibility_of_element_located((By.ID, "highlight")))
    text = browser.execute_script(f"return (await (await fetch('/v1/documents/{SEED_ID}')).json()).text")
    citation = browser.execute_script(
        "return fetch('/v1/search', {method: 'POST', headers: {'content-type': 'application/json'},"
        " body: JSON.stringify({query: 'what did Shoygu allege?', top_k: 1})}).then(r => r.json())"
    )["results"][0]["citation"]
    assert mark.text == citation["quote"] == text[citation["quote_start"] : citation["quote_end"]]
    in_view = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "const p = document.getElementById('source-text').getBoundingClientRect();"
        "return r.top >= p.top && r.bottom <= p.bottom;",
        mark,
    )
    assert in_view
    browser.save_screenshot(str(tmp_path / "page.png"))

    ask(browser, "What position does he hold?", 1)
    follow_up = browser.find_elements(By.CSS_SELECTOR, "li.assistant.done")[-1]
    assert "Searched for: What position does Shoygu hold?" in follow_up.text
    assert "Security Council" in follow_up.text


def test_the_document_list_loads_page_by_page(browser: webdriver.Chrome, server: str) -> None:
    notes = [f"notes/listed-{n}.md" for n in range(4)]
    for doc_id in notes:
        note = {"id": doc_id, "text": f"# Listed note {doc_id}\n\nThis note is here to fill the list."}
        assert httpx.post(f"{server}/v1/documents", json=note, timeout=60).status_code == 201
    try:
        expected = [d["id"] for d in httpx.get(f"{server}/v1/documents", params={"limit": 1000}, timeout=30).json()["documents"]]
        assert len(expected) == len(notes) + 1
        browser.get(server + "/?page_size=2")  # five documents: pages of 2, 2 and 1
        more = browser.find_element(By.ID, "more-documents")
        browser.find_element(By.CSS_SELECTOR, "#library summary").click()

        def listed() -> list[str]:
            return [item.get_attribute("data-id") for item in browser.find_elements(By.CSS_SELECTOR, "#document-list li")]

        WebDriverWait(browser, 20).until(lambda _: len(listed()) == 2 and more.is_displayed())
        assert browser.find_element(By.ID, "document-count").text == f"({len(expected)})"
        for shown in (4, 5):
            more.click()
            WebDriverWait(browser, 20).until(lambda _, shown=shown: len(listed()) == shown)
        WebDriverWait(browser, 20).until(lambda _: not more.is_displayed())  # the last page: nothing more to ask for
        assert listed() == expected
        requests = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(u => u.includes('/v1/documents?'))"
        )
        assert len(requests) == 3 and all("limit=2" in url for url in requests)

        browser.find_element(By.CSS_SELECTOR, f"#document-list li[data-id='{notes[-1]}'] button").click()
        WebDriverWait(browser, 20).until(ready.visibility_of_element_located((By.ID, "source")))
        assert "This note is here to fill the list." in browser.find_element(By.ID, "source-text").text
    finally:
        for doc_id in notes:
            httpx.delete(f"{server}/v1/documents/{doc_id}", timeout=60)
