"""Sign-ups: the worker. Sends the welcome email of each queued sign-up."""
import json
import logging
import os
import smtplib
from email.message import EmailMessage

import redis

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper())
log = logging.getLogger("worker")
queue = redis.Redis.from_url(os.environ["REDIS_URL"])
base_url = os.environ.get("BASE_URL", "http://localhost:8000")


def send_welcome(email: str) -> None:
    msg = EmailMessage()
    msg["From"] = "welcome@example.com"
    msg["To"] = email
    msg["Subject"] = "Welcome!"
    msg.set_content(f"Thanks for signing up. Start here: {base_url}/\n")
    with smtplib.SMTP(os.environ["MAIL_HOST"], int(os.environ.get("MAIL_PORT", "25")), timeout=10) as smtp:
        smtp.send_message(msg)


def main() -> None:
    log.info("waiting for jobs")
    while True:
        _, raw = queue.blpop("jobs")
        job = json.loads(raw)
        try:
            send_welcome(job["email"])
            log.info("welcome email sent to %s", job["email"])
        except (OSError, smtplib.SMTPException):
            log.exception("sending to %s failed; retrying later", job["email"])
            queue.rpush("jobs", raw)


if __name__ == "__main__":
    main()
