"""What every part of mimamori shares, and nothing else: the data contract's sources
(`sources`), delivery months (`months`), how a table is written and read back safely
(`storage`, with its fault-injection points `faults`), pid-range partitions (`partitions`)
and the telemetry switch (`telemetry`).

The leaf of the import graph: nothing here imports anything else of the project
(tests/test_architecture.py checks it).
"""
