"""Where sessions are recorded unless told otherwise; importable without pytest.

The uploader and the commands read it as well as the pytest options, and neither imports pytest.
"""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Where ``mlflow ui`` serves by default: links to runs of a store that is not a server go here.
LOCAL_UI = "http://127.0.0.1:5000"
