// The chat page's script (GET /page.js, deferred): a file, not inline, so the page's CSP can refuse
// inline script (what an injected <script> would be).
"use strict";
const KEY = "qabot-api-key";
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
};
const safeUrl = (url) => (typeof url === "string" && /^https?:\/\//i.test(url) ? url : null);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function askForKey(message) {
  $("keybox").hidden = false;
  $("status").textContent = message;
  $("key").focus();
}

async function ask(question) {
  const response = await fetch("/v1/ask", { method: "POST", headers: headers(), body: JSON.stringify({ question }) });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    const error = new Error("This server needs an API key: enter it above, then ask again.");
    error.needsKey = true;
    throw error;
  }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : "the server answered " + response.status;
    const wait = response.headers.get("Retry-After");
    throw new Error(message + (wait ? " (try again in " + wait + " s)" : ""));
  }
  return data;
}

function replyBlock(answer) {
  const reply = el("div", { className: "reply" });
  if (!answer.found) {
    reply.append(el("p", { className: "notfound", textContent: "Not in the archive" }),
                 el("p", { textContent: "I found nothing in the archive that answers this." }));
    return reply;
  }
  const sentence = answer.sentence;
  const context = answer.context || sentence;
  const at = context.indexOf(sentence);
  const p = el("p");
  const cite = answer.citation === null || answer.citation === undefined ? "" : " [" + (answer.citation + 1) + "]";
  if (answer.reply_source === "llm" && answer.reply) {
    p.append(answer.reply);  // an LLM reply carries its own [n] markers
  } else if (at >= 0) {  // the sentence highlighted in its context, its source number right after it
    p.append(context.slice(0, at), el("mark", { textContent: sentence }), cite, context.slice(at + sentence.length));
  } else {
    p.append(el("mark", { textContent: sentence }), cite);
  }
  reply.append(p);
  return reply;
}

function sourcesBlock(answer) {
  const list = el("ol", { className: "sources" });
  answer.passages.forEach((passage, i) => {
    const cited = i === answer.citation;
    const url = safeUrl(cited && answer.url_to_sentence ? answer.url_to_sentence : passage.url);
    const title = passage.title || passage.article_id;
    const item = el("li");
    item.append(url ? el("a", { href: url, textContent: title, rel: "noopener noreferrer", target: "_blank" }) : el("strong", { textContent: title }));
    const meta = [passage.date || "undated", passage.source].filter(Boolean).join(" · ") + (passage.duplicates ? " · +" + passage.duplicates + " similar" : "");
    item.append(" ", el("span", { className: "meta", textContent: "(" + meta + ")" }));
    const text = passage.text.replace(/\s+/g, " ");
    item.append(el("p", { className: "snippet", textContent: text.length > 260 ? text.slice(0, 260) + " …" : text }));
    list.append(item);
  });
  return list;
}

function show(question, answer) {
  const turn = el("article", { className: "turn" });
  turn.dataset.found = String(answer.found);
  turn.append(el("p", { className: "asked", textContent: question }), replyBlock(answer));
  if (answer.passages && answer.passages.length) {
    turn.append(el("h2", { textContent: answer.found ? "Sources" : "Closest passages" }), sourcesBlock(answer));
  }
  for (const note of answer.notes || []) turn.append(el("p", { className: "note", textContent: note }));
  $("answers").prepend(turn);
}

$("askform").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("ask").disabled = true;
  $("status").textContent = "Looking in the archive …";
  try {
    show(question, await ask(question));
    $("status").textContent = "";
    $("question").select();
  } catch (error) {
    if (error.needsKey) askForKey(error.message);
    else $("status").replaceChildren(el("span", { className: "error", textContent: "Sorry: " + error.message }));
  } finally {
    $("ask").disabled = false;
    if (!$("keybox").hidden && !sessionStorage.getItem(KEY)) $("key").focus(); else $("question").focus();
  }
});

$("keyform").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("key").value = "";
  $("keybox").hidden = true;
  $("status").textContent = "Key saved for this tab. Ask your question.";
  $("question").focus();
});
