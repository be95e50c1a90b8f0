"""What the pytest process and the uploader agree on: records, outcomes, limits, stores.

Imports neither pytest nor MLflow when loaded; both processes use it.
"""
