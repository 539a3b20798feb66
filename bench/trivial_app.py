"""The baseline for the accept benchmark: a Flask endpoint that reads JSON and answers 202.

It has everything a request costs in Flask and gunicorn and nothing of the site's own work
(no authentication, no validation, no database), so the ratio shows what the site adds.
"""

from flask import Flask, request

app = Flask(__name__)


@app.post("/ping")
def ping():
    payload = request.get_json()
    return {"received": len(payload)}, 202
