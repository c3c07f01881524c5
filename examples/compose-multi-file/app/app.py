"""Sign-ups: the web side. A sign-up is queued in Redis; worker.py sends the
welcome email."""
import json
import logging
import os

import redis
from flask import Flask, redirect, render_template_string, request

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper())
app = Flask(__name__)
queue = redis.Redis.from_url(os.environ["REDIS_URL"])

PAGE = """<!doctype html><meta charset="utf-8"><title>Sign up</title>
<body style="font:16px system-ui;max-width:36rem;margin:2rem auto">
<h1>Sign up</h1>
{% if sent %}<p>Check your inbox for {{ sent }}.</p>{% endif %}
<form method="post"><input type="email" name="email" required> <button>Sign up</button></form>
<p><small>{{ count }} sign-ups so far</small></p>
</body>"""


@app.get("/healthz")
def healthz():
    queue.ping()
    return "ok\n"


@app.get("/")
def index():
    return render_template_string(PAGE, sent=request.args.get("sent"), count=queue.scard("signups"))


@app.post("/")
def signup():
    email = request.form.get("email", "").strip()
    if "@" not in email or len(email) > 254:
        return "invalid email address\n", 400
    if queue.sadd("signups", email):
        queue.rpush("jobs", json.dumps({"type": "welcome", "email": email}))
    return redirect(f"/?sent={email}", code=303)
