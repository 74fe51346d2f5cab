"""Drive the tokenmeter gateway with the official openai and anthropic SDKs.

usage: clients.py GATEWAY_URL KEY

Makes each kind of call (streamed and not) as an application would, then
two calls that the budget denies, and prints one JSON object per line:
{"call": name, "ok": bool, "id": response id, "text": ..., "error": {...}}.
"""
import json
import sys

import anthropic
import openai

base, key = sys.argv[1], sys.argv[2]
oa = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=2)
an = anthropic.Anthropic(base_url=base, api_key=key, max_retries=2)


def emit(call, **kw):
    print(json.dumps({"call": call, **kw}), flush=True)


def attempt(call, fn):
    try:
        emit(call, ok=True, **fn())
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        body = e.body if isinstance(e.body, dict) else {}
        emit(call, ok=False, error={"status": e.status_code, "class": type(e).__name__, "body": body})


def chat():
    r = oa.chat.completions.create(model="gpt-4o-mini", max_tokens=8,
                                   messages=[{"role": "user", "content": "Summarise clause 4."}])
    return {"id": r.id, "text": r.choices[0].message.content, "usage": r.usage.total_tokens}


def chat_stream():
    text, cid = "", None
    for ch in oa.chat.completions.create(model="gpt-4o-mini", stream=True,
                                         messages=[{"role": "user", "content": "Stream clause 4."}]):
        cid = ch.id
        if ch.choices and ch.choices[0].delta.content:
            text += ch.choices[0].delta.content
    return {"id": cid, "text": text}


def responses():
    r = oa.responses.create(model="gpt-4o-mini", input="Find the indemnity clause.", max_output_tokens=16)
    return {"id": r.id, "text": r.output_text}


def responses_stream():
    text, rid = "", None
    with oa.responses.stream(model="gpt-4o-mini", input="Stream the indemnity clause.") as s:
        for ev in s:
            if ev.type == "response.output_text.delta":
                text += ev.delta
        rid = s.get_final_response().id
    return {"id": rid, "text": text}


def embeddings():
    r = oa.embeddings.create(model="text-embedding-3-small", input="lease agreement")
    return {"id": "", "text": str(len(r.data[0].embedding))}


def messages():
    r = an.messages.create(model="claude-haiku-4-5", max_tokens=20,
                           messages=[{"role": "user", "content": "Review the NDA."}])
    return {"id": r.id, "text": r.content[0].text}


def messages_stream():
    with an.messages.stream(model="claude-haiku-4-5", max_tokens=12,
                            messages=[{"role": "user", "content": "Stream an NDA review."}]) as s:
        text = "".join(s.text_stream)
        m = s.get_final_message()
    return {"id": m.id, "text": text, "usage": m.usage.output_tokens}


for name, fn in [("chat", chat), ("chat_stream", chat_stream), ("responses", responses),
                 ("responses_stream", responses_stream), ("embeddings", embeddings),
                 ("messages", messages), ("messages_stream", messages_stream)]:
    attempt(name, fn)

# The user u-7 has an exhausted budget: both SDKs must raise their own error.
hdr = {"X-Tokenmeter-User": "u-7"}
attempt("chat_denied", lambda: {"id": oa.chat.completions.create(
    model="gpt-4o-mini", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=hdr).id})
attempt("messages_denied", lambda: {"id": an.messages.create(
    model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_headers=hdr).id})
