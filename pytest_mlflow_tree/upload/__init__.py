"""The uploader process and replay: journal records applied to MLflow. Never imports pytest."""
