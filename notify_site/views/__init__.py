"""Blueprints of the site. Views are thin: validate, call one service, map its errors."""
