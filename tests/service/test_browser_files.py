"""The chat page with real files, in headless Chromium: upload a PDF with the page's button, ask, open the citation
and find its page named, shown with the quote highlighted on it, and the original linked at that page."""

from __future__ import annotations

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

from tests import files
from tests.helpers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


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
        "--window-size=1280,900",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)  # fmt: skip
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_upload_a_pdf_from_the_page_and_open_its_cited_page(browser: webdriver.Chrome, tmp_path: Path) -> None:
    pdf = tmp_path / "survey.pdf"
    pdf.write_bytes(files.report_pdf())
    with running_server(tmp_path / "index") as base:
        browser.get(base + "/")
        chooser = browser.find_element(By.ID, "upload-input")
        browser.execute_script("arguments[0].hidden = false", chooser)  # what the Upload button's file dialog does
        chooser.send_keys(str(pdf))
        status = browser.find_element(By.ID, "upload-text")
        WebDriverWait(browser, 120).until(lambda _: "survey.pdf: added" in status.text)

        browser.find_element(By.ID, "question").send_keys("Which sentence is printed on page three?", Keys.ENTER)
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "li.assistant.done"))
        answer = browser.find_element(By.CSS_SELECTOR, "li.assistant.done")
        assert files.PAGE_THREE_SENTENCE in answer.text
        assert "(p. 3)" in answer.find_element(By.CSS_SELECTOR, ".sources").text

        answer.find_element(By.CSS_SELECTOR, ".answer button.cite[data-marker='1']").click()
        mark = WebDriverWait(browser, 20).until(ready.visibility_of_element_located((By.ID, "highlight")))
        assert mark.text == files.PAGE_THREE_SENTENCE
        assert "p. 3" in browser.find_element(By.ID, "source-meta").text
        # The page itself, drawn by the server with the quote's box highlighted: read back the picture's pixels.
        image = WebDriverWait(browser, 30).until(ready.visibility_of_element_located((By.ID, "page-image")))
        WebDriverWait(browser, 10).until(lambda _: image.get_attribute("data-page") == "3")
        assert image.get_attribute("naturalWidth") and int(image.get_attribute("naturalWidth")) > 600
        citation = httpx.post(f"{base}/v1/search", json={"query": "Which sentence is printed on page three?"}).json()
        box = next(r["citation"]["boxes"][0] for r in citation["results"] if r["citation"]["doc_id"] == "survey.pdf")
        highlighted = browser.execute_script(
            """const [image, box] = arguments;
               const canvas = document.createElement("canvas");
               canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
               const context = canvas.getContext("2d");
               context.drawImage(image, 0, 0);
               const scale = image.naturalWidth / 612;  // a letter page is 612 points wide
               const y = Math.round((box.y0 + box.y1) / 2 * scale);
               let count = 0;
               for (let x = Math.round(box.x0 * scale); x < box.x1 * scale; x += 2) {
                 const [r, g, b] = context.getImageData(x, y, 1, 1).data;
                 if (r > 200 && g > 150 && b < 170) count += 1;
               }
               const [r, g, b] = context.getImageData(Math.round(box.x0 * scale), Math.round((box.y1 + 40) * scale), 1, 1).data;
               return {count, below: [r, g, b]};""",
            image,
            box,
        )
        assert highlighted["count"] > 50, highlighted  # the quote's line is yellow under its letters
        assert highlighted["below"] == [255, 255, 255]  # and the page below it is not
        link = browser.find_element(By.ID, "original-link")
        href = link.get_attribute("href")
        assert href == f"{base}/v1/documents/survey.pdf/file#page=3"
        original = httpx.get(href.split("#")[0])
        assert original.content == pdf.read_bytes() and original.headers["content-type"] == "application/pdf"
