"""In headless Chromium: the chat page asks for an API key when the server wants one, and /docs renders
offline under the content security policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import running_server
from tests.service.test_browser import browser  # noqa: F401  (the fixture: Debian's Chromium through its chromedriver)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
READ_KEY = "page-read-key-0123456789"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("keyed-page-index"), CITEQA_API_KEYS=f"read:{READ_KEY}") as base:
        yield base


def watch_csp(driver: webdriver.Chrome) -> None:
    """Records every content security policy violation of the pages loaded from now on."""
    script = (
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})


def csp_violations(driver: webdriver.Chrome) -> list[str]:
    return driver.execute_script("return window.cspViolations")


def test_the_chat_page_asks_for_a_key_and_keeps_it_for_the_tab(browser: webdriver.Chrome, keyed_server: str) -> None:  # noqa: F811
    watch_csp(browser)
    browser.get(keyed_server + "/")
    browser.find_element(By.ID, "question").send_keys("what did Shoygu allege?", Keys.ENTER)
    key_box = WebDriverWait(browser, 30).until(ready.visibility_of_element_located((By.ID, "api-key")))
    assert "needs an API key" in browser.find_element(By.ID, "key-message").text

    key_box.send_keys("not-the-key-0123456789", Keys.ENTER)  # refused: asked again
    WebDriverWait(browser, 30).until(lambda b: "did not accept" in b.find_element(By.ID, "key-message").text)
    browser.find_element(By.ID, "api-key").send_keys(READ_KEY, Keys.ENTER)

    WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "li.assistant.done"))
    answer = browser.find_element(By.CSS_SELECTOR, "li.assistant.done .answer")
    assert "Shoygu alleged" in answer.text
    assert not browser.find_element(By.ID, "key-form").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('citeqa.apiKey')") == READ_KEY
    assert browser.execute_script("return localStorage.length") == 0  # not kept beyond the tab

    # Opening a source reads a document: the key goes along with that request too.
    browser.find_element(By.CSS_SELECTOR, "li.assistant.done .answer button.cite[data-marker='1']").click()
    WebDriverWait(browser, 20).until(ready.visibility_of_element_located((By.ID, "highlight")))
    assert csp_violations(browser) == []


def test_docs_render_offline_under_the_content_security_policy(
    browser: webdriver.Chrome,  # noqa: F811
    keyed_server: str,
    tmp_path: Path,
) -> None:
    watch_csp(browser)
    browser.get(keyed_server + "/docs")
    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    assert "/v1/search" in browser.find_element(By.ID, "swagger-ui").text
    assert browser.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the keys, declared in the schema
    assert csp_violations(browser) == []
    requested = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert requested and all(url.startswith(keyed_server) for url in requested)  # nothing fetched from elsewhere
    browser.save_screenshot(str(tmp_path / "docs.png"))
