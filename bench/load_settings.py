"""Settings of the HTTP load benchmark (``bench/load_http.py``): the product's settings, plus a bench-only URLconf.

The URLconf adds the plain Django JSON view that the benchmark compares with the DRF list, and a middleware
reports each request's query count in a response header. Nothing here is part of the product.
"""

from brightrun.settings import *  # noqa: F403
from brightrun.settings import MIDDLEWARE

ROOT_URLCONF = "bench.load_urls"
MIDDLEWARE = ["bench.load_urls.QueryCountMiddleware", *MIDDLEWARE]
