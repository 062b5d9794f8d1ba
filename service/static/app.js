// citeqa chat page: streams answers from /v1/chat/completions and opens cited spans in their source.
"use strict";

const conversation = []; // {role, content} turns sent with every question, so follow-ups resolve
const documents = new Map(); // doc_id -> document JSON, fetched once
const $ = (id) => document.getElementById(id);

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

// Offsets count Unicode code points (Python string indexes); JavaScript strings count UTF-16 units,
// so the text is sliced as an array of code points.
async function openSource(citation) {
  let doc = documents.get(citation.doc_id);
  if (!doc) {
    const response = await fetch(documentUrl(citation.doc_id));
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
  $("source-meta").textContent = `${doc.source} · characters ${citation.quote_start}–${citation.quote_end}`;
  $("source").hidden = false;
  mark.scrollIntoView({ block: "center" });
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
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "citeqa", messages: conversation, stream: true }),
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
