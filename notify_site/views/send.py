"""Placeholder: being written."""

from flask import Blueprint

bp = Blueprint("send", __name__)
