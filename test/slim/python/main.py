import json, hashlib, re, collections, datetime, base64, textwrap
data = {"words": re.findall(r"\w+", "the quick brown fox jumps over the lazy dog the end")}
c = collections.Counter(data["words"])
print(json.dumps(c.most_common(2)))
print(hashlib.sha256(b"slim").hexdigest()[:16])
print(datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc).isoformat())
print(base64.b64encode(b"corpus").decode())
print(textwrap.shorten("a python app using several stdlib modules", width=20))
