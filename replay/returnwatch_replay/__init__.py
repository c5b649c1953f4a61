"""Test doubles of the publishers, for the demo, the tests and the benchmarks (never production).

- ``mirror``: the replay mirror, an HTTP server on 127.0.0.1 that serves the publishers' sites
  as they stood on a given day, from the real files in ``include/replay/``;
- ``sites``: one module per publisher's site (cbp.gov, hhs.gov, SEGOB's portal);
- ``demo``: ``make demo``, real history replayed through the DAGs (``dag.test()``);
- ``series``: the real series the detection benchmark and the monitor tests run on;
- ``example``: the README's example alert.

It depends on the runtime package (``returnwatch``), never the other way round.
"""
