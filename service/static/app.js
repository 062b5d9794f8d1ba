// citeqa chat page: streams answers from /v1/chat/completions and opens cited spans in their source.
"use strict";

const conversation = []; // {role, content} turns sent with every question, so follow-ups resolve
const documents = new Map(); // doc_id -> document JSON, fetched once
const $ = (id) => document.getElementById(id);
// The server limits how much one chat request may carry (CITEQA_MAX_CHAT_MESSAGES); the latest turns are
// the ones follow-ups refer to, so a long conversation sends only those.
const MAX_SENT_MESSAGES = 100;
// A server with API keys answers 401: the page asks for a key once per tab and sends it as a Bearer token.
// sessionStorage, not localStorage: the key is forgotten when the tab closes.
const KEY_STORAGE = "citeqa.apiKey";

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

// Shows the key form and resolves with the key typed into it.
function askForKey(message) {
  return new Promise((resolve) => {
    const form = $("key-form");
    $("key-message").textContent = message;
    form.hidden = false;
    $("api-key").value = "";
    $("api-key").focus();
    form.onsubmit = (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return;
      form.hidden = true;
      form.onsubmit = null;
      resolve(key);
    };
  });
}

// fetch, with the key if there is one; on 401 asks for a (new) key and tries again.
async function apiFetch(url, options = {}) {
  for (;;) {
    const sentKey = Boolean(sessionStorage.getItem(KEY_STORAGE));
    const response = await fetch(url, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
    if (response.status !== 401) return response;
    sessionStorage.removeItem(KEY_STORAGE);
    const key = await askForKey(sentKey ? "The server did not accept that key. Enter another:" : "This server needs an API key:");
    sessionStorage.setItem(KEY_STORAGE, key);
  }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function addMessage(role, text) {
  const item = element("li", { class: role });
  const body = element("div", { class: "answer" }, text);
  item.append(body);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

// The message text is "answer\n\nSources:\n...\n\nSearched for: ..."; the page shows the answer with
// clickable markers and renders the sources from the structured citations instead.
function answerPart(content) {
  return content.split("\n\nSources:")[0].split("\n\nSearched for:")[0];
}

function renderAnswer(item, content, citations, info) {
  const body = item.querySelector(".answer");
  body.textContent = "";
  const byMarker = new Map(citations.map((c) => [c.marker, c]));
  for (const piece of answerPart(content).split(/(\[\d+\])/)) {
    const match = piece.match(/^\[(\d+)\]$/);
    const citation = match && byMarker.get(Number(match[1]));
    if (citation) body.append(citeButton(citation));
    else body.append(document.createTextNode(piece));
  }
  if (citations.length) {
    const list = element("ol", { class: "sources" });
    for (const citation of citations) {
      const entry = element("li");
      entry.append(citeButton(citation), document.createTextNode(` ${citation.title}: “${citation.quote}”`));
      const where = locationText(citation);
      if (where) entry.append(element("span", { class: "where" }, ` (${where})`));
      list.append(entry);
    }
    item.append(list);
  }
  if (info && info.query && info.query !== item.dataset.question) {
    item.append(element("div", { class: "searched" }, `Searched for: ${info.query}`));
  }
}

function citeButton(citation) {
  const button = element("button", { class: "cite", type: "button", "data-marker": citation.marker }, `[${citation.marker}]`);
  button.title = `${citation.title}, characters ${citation.quote_start}-${citation.quote_end}`;
  button.addEventListener("click", () => openSource(citation));
  return button;
}

function documentUrl(docId) {
  return "/v1/documents/" + docId.split("/").map(encodeURIComponent).join("/");
}

// "p. 3", "pp. 3–4" for PDFs; "§ Results > Table 2" for documents with headings.
function locationText(citation) {
  const parts = [];
  if (citation.page_start) {
    const end = citation.page_end || citation.page_start;
    parts.push(end === citation.page_start ? `p. ${citation.page_start}` : `pp. ${citation.page_start}–${end}`);
  }
  if (citation.section) parts.push(`§ ${citation.section}`);
  return parts.join(", ");
}

// The original file, opened at the cited page when it is a PDF (the browser's viewer reads #page=N).
function originalLink(doc, citation) {
  if (!doc.original) return null;
  const page = citation.page_start ? `#page=${citation.page_start}` : "";
  const label = citation.page_start ? `Open the original at page ${citation.page_start}` : `Open the original (${doc.original.filename})`;
  return element("a", { href: doc.original.url + page, target: "_blank", rel: "noopener", id: "original-link" }, label);
}

// Offsets count Unicode code points (Python string indexes); JavaScript strings count UTF-16 units,
// so the text is sliced as an array of code points.
async function openSource(citation) {
  let doc = documents.get(citation.doc_id);
  if (!doc) {
    const response = await apiFetch(documentUrl(citation.doc_id));
    if (!response.ok) return showSourceError(`Could not open ${citation.doc_id} (${response.status}).`);
    doc = await response.json();
    documents.set(citation.doc_id, doc);
  }
  const points = Array.from(doc.text);
  const mark = element("mark", { id: "highlight" }, points.slice(citation.quote_start, citation.quote_end).join(""));
  const text = $("source-text");
  text.textContent = "";
  text.append(points.slice(0, citation.quote_start).join(""), mark, points.slice(citation.quote_end).join(""));
  $("source-title").textContent = doc.title;
  const where = locationText(citation);
  const meta = $("source-meta");
  meta.textContent = `${doc.source}${where ? " · " + where : ""} · characters ${citation.quote_start}–${citation.quote_end}`;
  const link = originalLink(doc, citation);
  if (link) meta.append(document.createTextNode(" · "), link);
  $("source").hidden = false;
  mark.scrollIntoView({ block: "center" });
  showPage(citation);
}

// The cited page as an image with the quote's rectangles drawn on it (GET …/pages/N?start=…&end=…), for PDFs and
// images, whose citations carry boxes. Fetched with the key like every other call, so it is shown from a blob.
let pageImageUrl = null;
async function showPage(citation) {
  const view = $("page-view");
  const image = $("page-image");
  const boxes = citation.boxes || [];
  view.hidden = true;
  image.removeAttribute("data-page");
  if (pageImageUrl) URL.revokeObjectURL(pageImageUrl);
  pageImageUrl = null;
  if (!boxes.length) return;
  const page = boxes[0].page;
  const url = `${documentUrl(citation.doc_id)}/pages/${page}?start=${citation.quote_start}&end=${citation.quote_end}`;
  const response = await apiFetch(url);
  if (!response.ok) return;
  const pixelsPerUnit = Number(response.headers.get("x-page-scale")) || 1;
  pageImageUrl = URL.createObjectURL(await response.blob());
  image.onload = () => {
    image.dataset.page = String(page);
    view.hidden = false;
    // Scroll the page so the first highlighted line is in view: boxes are in page units, the picture holds
    // X-Page-Scale pixels a unit and is shown scaled to the pane's width.
    const first = boxes[0];
    const scale = image.clientWidth / image.naturalWidth;
    view.scrollTop = Math.max(0, first.y0 * pixelsPerUnit * scale - 40);
  };
  image.alt = `Page ${page} of ${citation.title}, the quote highlighted`;
  $("page-caption").textContent = `Page ${page}, the quote highlighted`;
  image.src = pageImageUrl;
}


function showSourceError(message) {
  $("source-text").textContent = message;
  $("source").hidden = false;
}

// Reads a server-sent event stream of chat.completion.chunk objects; calls onChunk for each.
async function readStream(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let boundary;
    while ((boundary = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onChunk(JSON.parse(data));
      }
    }
  }
}

async function ask(question) {
  conversation.push({ role: "user", content: question });
  addMessage("user", question);
  const item = addMessage("assistant", "…");
  item.dataset.question = question;
  let content = "";
  let citations = [];
  let info = null;
  try {
    const response = await apiFetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "citeqa", messages: conversation.slice(-MAX_SENT_MESSAGES), stream: true }),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.error ? problem.error.message : `HTTP ${response.status}`);
    }
    await readStream(response, (chunk) => {
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.delta && choice.delta.content) {
        content += choice.delta.content;
        item.querySelector(".answer").textContent = answerPart(content);
      }
      if (chunk.citations) citations = chunk.citations;
      if (chunk.citeqa) info = chunk.citeqa;
    });
    renderAnswer(item, content, citations, info);
    item.classList.add("done");
    conversation.push({ role: "assistant", content });
  } catch (error) {
    item.querySelector(".answer").textContent = `Error: ${error.message}`;
    item.classList.add("error", "done");
    conversation.pop();
  }
}

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  $("send").disabled = true;
  try {
    await ask(question);
  } finally {
    $("send").disabled = false;
    $("question").focus();
  }
});

$("new-chat").addEventListener("click", () => {
  conversation.length = 0;
  $("messages").textContent = "";
  $("source").hidden = true;
});

$("close-source").addEventListener("click", () => { $("source").hidden = true; });

// The document list, a page at a time (GET /v1/documents?limit=…&cursor=…): a collection may hold millions of
// documents, so the list reads the first page when it is opened and the next one each time "More" is pressed.
// The page size is 100, or ?page_size=N in the page's address (1-1000).
const DOCUMENT_PAGE_SIZE = pageSize(new URLSearchParams(location.search).get("page_size"));
const listing = { cursor: null, loaded: false, busy: false };

function pageSize(asked) {
  const size = Number(asked);
  return asked && Number.isInteger(size) && size >= 1 && size <= 1000 ? size : 100;
}

function documentItem(doc) {
  const item = element("li", { "data-id": doc.id });
  const open = element("button", { type: "button", title: `${doc.source}, ${doc.characters} characters` }, doc.title || doc.id);
  open.addEventListener("click", () => openDocument(doc.id));
  item.append(open);
  if (doc.title !== doc.id) item.append(element("span", { class: "doc-id" }, doc.id));
  return item;
}

// Reads the next page (the first one, with reset) and appends it to the list.
async function loadDocuments(reset = false) {
  if (listing.busy) return;
  listing.busy = true;
  const more = $("more-documents");
  more.disabled = true;
  try {
    if (reset) listing.cursor = null;
    const query = new URLSearchParams({ limit: String(DOCUMENT_PAGE_SIZE) });
    if (listing.cursor) query.set("cursor", listing.cursor);
    const response = await apiFetch(`/v1/documents?${query}`);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    if (reset) $("document-list").textContent = "";
    for (const doc of body.documents) $("document-list").append(documentItem(doc));
    listing.cursor = body.next_cursor;
    listing.loaded = true;
    $("document-count").textContent = `(${body.total})`;
    more.hidden = !body.next_cursor;
  } catch (error) {
    $("document-count").textContent = `(could not be listed: ${error.message})`;
  } finally {
    listing.busy = false;
    more.disabled = false;
  }
}

// Shows a whole document in the source pane, from the list (no quote to highlight).
async function openDocument(docId) {
  const response = await apiFetch(documentUrl(docId));
  if (!response.ok) return showSourceError(`Could not open ${docId} (${response.status}).`);
  const doc = await response.json();
  documents.set(docId, doc);
  $("page-view").hidden = true; // a whole document has no quote to show on a page
  $("source-title").textContent = doc.title;
  $("source-meta").textContent = `${doc.source} · ${doc.characters} characters`;
  const link = originalLink(doc, {});
  if (link) $("source-meta").append(document.createTextNode(" · "), link);
  $("source-text").textContent = doc.text;
  $("source").hidden = false;
  $("source-text").scrollTop = 0;
}

$("library").addEventListener("toggle", () => {
  if ($("library").open && !listing.loaded) loadDocuments(true);
});
$("more-documents").addEventListener("click", () => loadDocuments());

// Upload: the chosen files go in one multipart request as a job (wait=false); the job is polled until it ends.
function showUpload(text, fraction) {
  $("upload-status").hidden = false;
  $("upload-text").textContent = text;
  const bar = $("upload-progress");
  if (fraction === null) bar.removeAttribute("value");
  else bar.value = fraction;
}

function describeJob(job) {
  if (job.state === "queued") return "Waiting for the upload worker…";
  if (job.state === "running") {
    const busy = job.files.find((f) => !["committed", "failed", "queued"].includes(f.stage)) || job.files[0];
    return `${busy.filename}: ${busy.stage}… (${Math.round(job.progress * 100)}%)`;
  }
  return job.files.map((f) => `${f.filename}: ${f.status}${f.reason ? " — " + f.reason : ""}`).join("; ");
}

async function upload(fileList) {
  const form = new FormData();
  for (const file of fileList) form.append("files", file, file.name);
  showUpload(`Uploading ${fileList.length} file(s)…`, null);
  const response = await fetch("/v1/documents?wait=false", { method: "POST", body: form });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  let job = body.job;
  while (job.state === "queued" || job.state === "running") {
    showUpload(describeJob(job), job.progress);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const poll = await fetch(body.status_url);
    if (!poll.ok) throw new Error(`the job could not be read (HTTP ${poll.status})`);
    job = await poll.json();
  }
  showUpload(job.error || describeJob(job), 1);
  listing.loaded = false; // the list is read again from its first page, now or when it is next opened
  if ($("library").open) loadDocuments(true);
  $("upload-status").classList.toggle("error", job.state === "failed" || job.files.some((f) => f.status === "failed"));
}

$("upload-button").addEventListener("click", () => $("upload-input").click());
$("upload-input").addEventListener("change", async (event) => {
  const chosen = Array.from(event.target.files);
  event.target.value = "";
  if (!chosen.length) return;
  $("upload-button").disabled = true;
  $("upload-status").classList.remove("error");
  try {
    await upload(chosen);
  } catch (error) {
    showUpload(`Upload failed: ${error.message}`, 0);
    $("upload-status").classList.add("error");
  } finally {
    $("upload-button").disabled = false;
  }
});
