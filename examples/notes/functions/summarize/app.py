"""Summarises a note's text. Called by create-note through Lambda's Invoke API; it has no policy,
so it can call nothing itself."""


def handler(event, context):
    text = event.get("text", "") if isinstance(event, dict) else ""
    words = text.split()
    first = " ".join(words[:12])
    return {"words": len(words), "summary": first + ("…" if len(words) > 12 else "")}
