"""The method and the data: plain Python, numpy and torch. Never imports Qt."""
