// validate.js reads a Teams message (the JSON the Teams channel posts) on
// stdin, parses its Adaptive Card with Microsoft's Adaptive Cards library,
// and prints what the library reports as JSON: the card's version and
// every parse and validation event. Exit status 0 means it ran; the Go
// test decides what the events mean.
"use strict";
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const msg = JSON.parse(input);
  const out = { events: [], failures: [], elements: [] };
  const att = (msg.attachments || [])[0] || {};
  out.type = msg.type;
  out.contentType = att.contentType;
  const json = att.content;
  const ctx = new AC.SerializationContext();
  const card = new AC.AdaptiveCard();
  card.parse(json, ctx);
  for (let i = 0; i < ctx.eventCount; i++) {
    const e = ctx.getEventAt(i);
    out.events.push({ phase: e.phase, event: e.event, message: e.message });
  }
  const v = card.validateProperties();
  for (const e of v.validationEvents) {
    out.failures.push({ phase: e.phase, event: e.event, message: e.message });
  }
  out.version = card.version ? card.version.toString() : "";
  // What the library understood: each element and action, by type, with
  // its text, so that the test can check that nothing was dropped.
  const walk = (el) => {
    const item = { type: el.getJsonTypeName() };
    if (typeof el.text === "string") item.text = el.text;
    if (el.url) item.url = el.url;
    if (el.selectAction && el.selectAction.url) item.url = el.selectAction.url;
    if (el.title) item.title = el.title;
    out.elements.push(item);
  };
  const visit = (c) => {
    if (c.getItemCount) {
      for (let i = 0; i < c.getItemCount(); i++) {
        const it = c.getItemAt(i);
        walk(it);
        if (it.getInlineCount) {
          for (let j = 0; j < it.getInlineCount(); j++) walk(it.getInlineAt(j));
        }
        if (it.facts) for (const f of it.facts) out.elements.push({ type: "Fact", title: f.name, text: f.value });
        visit(it);
      }
    }
  };
  visit(card);
  for (let i = 0; i < card.getActionCount(); i++) walk(card.getActionAt(i));
  process.stdout.write(JSON.stringify(out));
});
