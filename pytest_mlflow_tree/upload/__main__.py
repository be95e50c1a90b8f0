"""``python -m pytest_mlflow_tree.upload``: the uploader process the plugin starts."""

from pytest_mlflow_tree.upload.process import exit_now, main

exit_now(main())
