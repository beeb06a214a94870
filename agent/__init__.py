"""The sensorium daemon: config, sources, gate, dispatcher, query service, CLI."""

import os

# Clients send images to the query endpoint (agent/query/images.py). OpenCV compares an image's declared size
# with this before it allocates, so a small compressed file cannot make the daemon allocate gigabytes (default
# 2^30 pixels). It reads the variable once, when cv2 loads: hence here, before any agent module imports cv2.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "100000000")  # = images.MAX_IMAGE_PIXELS
