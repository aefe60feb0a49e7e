"""Parts of ``bench.scale``: seeding the database, the two load-generator processes (kiosks, consoles), the
rising-rate steps and the report.

The leading underscore keeps ``python -m bench`` from treating this package as a benchmark.
"""

STAGE_TIMEOUT_S = 30.0     # any one wait: a connection, a reply, a worker's answer
