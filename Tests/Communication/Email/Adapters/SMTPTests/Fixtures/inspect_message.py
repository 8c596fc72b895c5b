"""Reads a received message the way a mail program would (Python's email package, policy=default) and
verifies its DKIM signature with dkimpy against the TXT record given. Prints JSON.

usage: inspect_message.py MESSAGE.eml [DKIM-TXT-RECORD]
"""
import hashlib
import json
import sys
import email
import email.policy

raw = open(sys.argv[1], "rb").read()
message = email.message_from_bytes(raw, policy=email.policy.default)


def addresses(name):
    header = message[name]
    return [] if header is None else [{"name": a.display_name, "address": a.addr_spec} for a in header.addresses]


parts, defects = [], [str(d) for d in message.defects]
for part in message.walk():
    defects += [str(d) for d in part.defects]
    if part.is_multipart():
        parts.append({"type": part.get_content_type()})
        continue
    payload = part.get_payload(decode=True) or b""
    entry = {"type": part.get_content_type(), "disposition": part.get_content_disposition(), "filename": part.get_filename(),
             "cid": part["content-id"], "sha256": hashlib.sha256(payload).hexdigest(), "encoding": part["content-transfer-encoding"]}
    if part.get_content_maintype() == "text":
        entry["text"] = part.get_content()
    parts.append(entry)

result = {
    "subject": message["subject"], "from": addresses("from"), "to": addresses("to"), "cc": addresses("cc"),
    "reply_to": addresses("reply-to"), "bcc_header": message["bcc"], "message_id": message["message-id"], "date": message["date"],
    "list_unsubscribe": message["list-unsubscribe"], "list_unsubscribe_post": message["list-unsubscribe-post"],
    "content_type": message.get_content_type(), "parts": parts, "defects": defects,
    "longest_line": max(len(line) for line in raw.split(b"\r\n")), "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
}
if len(sys.argv) > 2:
    import dkim
    record = sys.argv[2].encode()
    result["dkim"] = bool(dkim.verify(raw, dnsfunc=lambda name, timeout=5: record))
print(json.dumps(result))
