"""Where sessions are recorded unless told otherwise; importable without pytest.

The uploader and the commands read it as well as the pytest options, and neither imports pytest.
"""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
