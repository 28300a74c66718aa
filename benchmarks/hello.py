"""The ceiling: the smallest WSGI app, served by the same waitress as pypicloud.

``pserve`` loads it through :func:`app_factory` (``use = call:benchmarks.hello:app_factory``);
``waitress-serve benchmarks.hello:app`` works too.
"""

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


def app_factory(global_config, **settings):
    return app
